"""The algorithm contract (DomainBed's): ``update(minibatches)`` and ``predict(x)``, plus state.

What a subclass may change, each through one hook (so no port carries a workaround):

* ``build_networks``: the modules (default: ``network = Sequential(featurizer, classifier)``);
  ``new_featurizer`` / ``new_classifier`` build DomainBed's parts for any input shape or width;
* ``make_optimizers``: a dict of named optimizers (default: ``{"main": make_optimizer()}``, one
  Adam over ``network``); ``optimizer`` is the ``"main"`` one;
* ``extra_state`` / ``load_extra_state``: state that is neither a parameter, a buffer nor an
  optimizer (buffers such as GroupDRO's q or MTL's embeddings are saved with the module);
* ``annealed_weight``: the shared penalty anneal + Adam reset (Fishr, IRM, VREx), with the
  per-algorithm weight before the anneal ``WEIGHT_BEFORE_ANNEAL``;
* ``EVAL_BATCH_DEPENDENT``: True when ``predict`` depends on the other samples of its batch
  (ARM, MTL): the trial then evaluates in DomainBed's batches of 64;
* ``check_hparams``: refuses, before anything is built, hparams the algorithm cannot train with.

``state()`` / ``load_state()`` snapshot the module, every optimizer, ``update_count`` and the
extra state, so a trial resumes exactly (DomainBed itself never saved optimizer state).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from fishr_tune.errors import UserError
from fishr_tune.networks import Classifier, Featurizer

Minibatches = list[tuple[torch.Tensor, torch.Tensor]]


class Algorithm(nn.Module):
    """Base class: networks trained by ``update`` steps, queried by ``predict``.

    Args:
        input_shape: (C, H, W) of one input; picks the featurizer.
        num_classes: number of classes (classifier outputs).
        num_domains: number of training domains (minibatches per ``update``).
        hparams: the trial's hparams; reads ``lr``, ``weight_decay`` and ``nonlinear_classifier``
            (default False), plus what the featurizer and the subclass read.
        weights: ImageNet weights for ResNet featurizers (see ``networks.Featurizer``).
        featurizer: a ready featurizer (any module with ``n_outputs``) to use instead of the
            input-shape default, e.g. for benchmarks or new backbones.
    """

    #: The penalty weight before the anneal step (DomainBed: 1.0 for IRM and VREx, 0 for Fishr).
    WEIGHT_BEFORE_ANNEAL: ClassVar[float] = 0.0
    #: Whether ``predict`` of one sample depends on the rest of its evaluation batch.
    EVAL_BATCH_DEPENDENT: ClassVar[bool] = False

    def __init__(self, input_shape: Sequence[int], num_classes: int, num_domains: int,
                 hparams: dict, weights: str | None = None, *,
                 featurizer: nn.Module | None = None):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.num_domains = int(num_domains)
        self.hparams = dict(hparams)
        self.weights = weights
        self.check_hparams(self.hparams)
        self.update_count = 0
        self.build_networks(featurizer)
        self.optimizers: dict[str, torch.optim.Optimizer] = self.make_optimizers()

    # ---- hooks --------------------------------------------------------------------------------
    @classmethod
    def check_hparams(cls, hparams: dict) -> None:
        """Raise a one-line UserError for hparams this algorithm cannot train with (default:
        none). Called before any network is built."""

    def build_networks(self, featurizer: nn.Module | None) -> None:
        """Create the modules; default ``network = Sequential(featurizer, classifier)``."""
        if featurizer is None:
            featurizer = self.new_featurizer(self.input_shape)
        self.network = nn.Sequential(featurizer, self.new_classifier(featurizer.n_outputs))

    def new_featurizer(self, input_shape: Sequence[int]) -> nn.Module:
        """DomainBed's featurizer for inputs of ``input_shape`` (ResNet weights: ``weights``)."""
        return Featurizer(input_shape, self.hparams, self.weights)

    def new_classifier(self, in_features: int) -> nn.Module:
        """DomainBed's classifier from ``in_features`` to the classes (linear unless the hparam
        ``nonlinear_classifier``)."""
        return Classifier(in_features, self.num_classes,
                          bool(self.hparams.get("nonlinear_classifier", False)))

    def make_optimizer(self) -> torch.optim.Optimizer:
        """A fresh Adam over ``network`` with the hparams' lr and weight_decay (the ``"main"``
        optimizer; the anneal rebuilds it)."""
        return self.adam(self.network.parameters())

    def adam(self, params, lr: str = "lr", weight_decay: str = "weight_decay",
             betas: tuple[float, float] | None = None) -> torch.optim.Adam:
        """An Adam over ``params`` whose lr and weight decay are the hparams named so."""
        kwargs = {} if betas is None else {"betas": betas}
        return torch.optim.Adam(params, lr=float(self.hparam(lr)),
                                weight_decay=float(self.hparam(weight_decay)), **kwargs)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Every optimizer, by name (default: ``{"main": make_optimizer()}``)."""
        return {"main": self.make_optimizer()}

    def extra_state(self) -> dict:
        """State outside parameters, buffers and optimizers (default: none)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore what :meth:`extra_state` returned."""

    # ---- shared mechanisms --------------------------------------------------------------------
    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The ``"main"`` optimizer."""
        return self.optimizers["main"]

    @optimizer.setter
    def optimizer(self, value: torch.optim.Optimizer) -> None:
        self.optimizers["main"] = value

    @property
    def featurizer(self) -> nn.Module:
        """The featurizer (first half of ``network``)."""
        return self.network[0]

    @property
    def classifier(self) -> nn.Module:
        """The classifier (second half of ``network``)."""
        return self.network[1]

    def hparam(self, name: str) -> Any:
        """The value of hparam ``name``; a UserError naming it if the dict lacks it."""
        if name not in self.hparams:
            raise UserError(f"hparam {name!r} missing for {type(self).__name__}: add it to the "
                            f"hparams (search_spaces defines every algorithm's hparams)")
        return self.hparams[name]

    def annealed_weight(self, weight: float, anneal_iters: int) -> float:
        """This step's penalty weight: ``WEIGHT_BEFORE_ANNEAL`` while ``update_count <
        anneal_iters``, ``weight`` from then on. At ``update_count == anneal_iters != 0`` the main
        optimizer is rebuilt (fresh Adam state) first: DomainBed resets Adam there because its
        moments do not fit the sudden jump in gradient magnitude. (DomainBed's IRM and VREx
        also reset at anneal 0, on an Adam that has taken no step yet: the same state.)"""
        if self.update_count < anneal_iters:
            return self.WEIGHT_BEFORE_ANNEAL
        if self.update_count == anneal_iters != 0:
            self.optimizer = self.make_optimizer()
        return weight

    def take_step(self, objective: torch.Tensor) -> None:
        """Minimise ``objective`` by one step of the main optimizer; counts the update."""
        self.optimizer.zero_grad()
        objective.backward()
        self.optimizer.step()
        self.update_count += 1

    # ---- the contract -------------------------------------------------------------------------
    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One training step on one (x, y) minibatch per training domain.

        Returns:
            The step's scalar metrics, as Python floats (keys may differ between steps).
        """
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for inputs x (N, C, H, W)."""
        return self.network(x)

    def state(self) -> dict:
        """A snapshot (deep copy) of everything needed to resume exactly: the module's
        state_dict (networks and buffers such as Fishr's moving averages), every optimizer's
        state_dict, ``update_count`` and :meth:`extra_state`."""
        return copy.deepcopy({
            "model": self.state_dict(), "update_count": self.update_count,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "extra": self.extra_state()})

    def load_state(self, state: dict) -> None:
        """Restore a snapshot from :meth:`state` (of an algorithm built with the same arguments)."""
        self.load_state_dict(state["model"])
        for name, saved in state["optimizers"].items():
            self.optimizers[name].load_state_dict(saved)
        self.update_count = int(state["update_count"])
        self.load_extra_state(copy.deepcopy(state["extra"]))


def pooled(minibatches: Minibatches) -> tuple[torch.Tensor, torch.Tensor]:
    """All domains' inputs and labels, concatenated in domain order."""
    return torch.cat([x for x, _ in minibatches]), torch.cat([y for _, y in minibatches])
