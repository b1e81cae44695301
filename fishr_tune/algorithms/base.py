"""The algorithm contract (DomainBed's): ``update(minibatches)`` and ``predict(x)``, plus state.

Every algorithm owns ``network = Sequential(featurizer, classifier)`` and an Adam optimizer over
all of it, and counts its updates; ``state()`` / ``load_state()`` snapshot all of that so a trial
resumes exactly (DomainBed itself never saved optimizer or moving-average state).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from fishr_tune.errors import UserError
from fishr_tune.networks import Classifier, Featurizer


class Algorithm(nn.Module):
    """Base class: a featurizer + classifier network trained by ``update`` steps.

    Args:
        input_shape: (C, H, W) of one input; picks the featurizer.
        num_classes: number of classes (classifier outputs).
        num_domains: number of training domains (minibatches per ``update``).
        hparams: the trial's hparams; reads ``lr``, ``weight_decay`` and ``nonlinear_classifier``
            (default False), plus what the featurizer reads.
        weights: ImageNet weights for ResNet featurizers (see ``networks.Featurizer``).
        featurizer: a ready featurizer (any module with ``n_outputs``) to use instead of the
            input-shape default, e.g. for benchmarks or new backbones.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, num_domains: int,
                 hparams: dict, weights: str | None = None, *,
                 featurizer: nn.Module | None = None):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.num_domains = int(num_domains)
        self.hparams = dict(hparams)
        if featurizer is None:
            featurizer = Featurizer(self.input_shape, self.hparams, weights)
        classifier = Classifier(featurizer.n_outputs, self.num_classes,
                                bool(self.hparams.get("nonlinear_classifier", False)))
        self.network = nn.Sequential(featurizer, classifier)
        self.update_count = 0
        self.optimizer = self.make_optimizer()

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

    def make_optimizer(self) -> torch.optim.Optimizer:
        """A fresh Adam over the whole network with the hparams' lr and weight_decay."""
        return torch.optim.Adam(self.network.parameters(), lr=float(self.hparam("lr")),
                                weight_decay=float(self.hparam("weight_decay")))

    def update(self, minibatches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
        """One training step on one (x, y) minibatch per training domain.

        Returns:
            The step's scalar metrics (at least ``loss``), as Python floats.
        """
        raise NotImplementedError

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes) for inputs x (N, C, H, W)."""
        return self.network(x)

    def state(self) -> dict:
        """A snapshot (deep copy) of everything needed to resume exactly: the module's
        state_dict (network and buffers such as Fishr's moving averages), the optimizer's
        state_dict and ``update_count``."""
        return copy.deepcopy({"model": self.state_dict(), "optimizer": self.optimizer.state_dict(),
                              "update_count": self.update_count})

    def load_state(self, state: dict) -> None:
        """Restore a snapshot from :meth:`state` (of an algorithm built with the same arguments)."""
        self.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.update_count = int(state["update_count"])
