"""Fishr (Rame et al., ICML 2022) exactly as DomainBed's code, with a closed-form variance.

Per step, with features z_i (D), logits f_i = W z_i + b (C classes) and the SUMMED cross-entropy:

1. the per-sample gradient w.r.t. the classifier is g_i = d_i (x) [z_i; 1] with
   d_i = softmax(f_i) - onehot(y_i), flattened as W (C x D, row-major like ``nn.Linear.weight``)
   then b: |w| = C*D + C coordinates (no 1/N factor: the loss is summed, not averaged);
2. per training domain e, the centred, biased (1/n_e) variance v_e of those gradients;
3. an EMA per domain with a detached past, m_hat = ema * stopgrad(m) + (1 - ema) * v_e, storing
   m <- stopgrad(m_hat) and using u_e = m_hat / (1 - ema) (so u_e = v_e at the first step);
4. penalty = mean over domains of the MEAN over the |w| coordinates of (u_e - mean_e u_e)^2;
5. objective = mean CE over the pooled batch + weight * penalty, weight = 0 while
   update_count < penalty_anneal_iters and ``lambda`` after; at update_count ==
   penalty_anneal_iters != 0 Adam is rebuilt (fresh state) before that step's update.

Penalty scale: the paper's equation writes the squared NORM ||u_e - u_bar||^2, which is |w| times
the coordinate MEAN that DomainBed's code computes (``l2_between_dicts`` ends in ``.mean()``).
DomainBed's lambda range 10^U(1,4) was tuned for the mean, so we follow the code; a lambda taken
from the paper's equation must be multiplied by |w| (14,343 for PACS with ResNet-50).

Closed form: Var_i(d_ic z_ik) = mean(d_ic^2 z_ik^2) - mean(d_ic z_ik)^2, i.e. with R the rows d_i
and Z the rows z_i of a domain, (R*R)^T (Z*Z) / n - ((R^T Z) / n)^2: two matrix products per
domain and no (N, |w|) per-sample tensor; autograd differentiates it w.r.t. features and logits.
Numerical caveat: this is the uncentred formula, so in float32 a coordinate whose variance is
tiny next to its squared mean loses relative precision (its absolute error stays ~1e-7 of the
second moment); the penalty compares coordinates on that absolute scale.

``fishr_backend="backpack"`` selects the reference path, BackPACK's BatchGrad on the classifier.
DomainBed restricts that backward with ``inputs=``, which leaves ``grad_batch`` unset in BackPACK
1.7.1; we instead feed the classifier a detached copy of the features, so the create_graph
backward stops there, and push d(objective)/d(features) through the featurizer afterwards.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from backpack import backpack, extend
from backpack.extensions import BatchGrad
from torch import nn

from fishr_tune.algorithms.base import Algorithm, Minibatches, pooled
from fishr_tune.errors import UserError

BACKENDS = ("closed_form", "backpack")


def _check_sizes(domain_sizes: Sequence[int], total: int) -> list[int]:
    sizes = [int(n) for n in domain_sizes]
    if not sizes or min(sizes) < 1 or sum(sizes) != total:
        raise ValueError(f"domain_sizes {sizes} must be positive and sum to the batch size {total}")
    return sizes


def _moment_variance(residuals: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Closed-form variances over dim -2 (the samples); any leading dims are batch dims."""
    # 1/n goes on the small (n, C) factor, not on the (C, D) products; addcmul fuses the
    # "second moment - mean^2" so each (C, D) result is written once.
    scaled = residuals / residuals.shape[-2]
    second = residuals * scaled
    mean_w = scaled.transpose(-1, -2) @ features
    weight_var = torch.addcmul(second.transpose(-1, -2) @ features.square(), mean_w, mean_w,
                               value=-1)
    mean_b = scaled.sum(-2)
    bias_var = torch.addcmul(second.sum(-2), mean_b, mean_b, value=-1)
    return torch.cat([weight_var.flatten(-2), bias_var], dim=-1)


def domain_gradient_variances(features: torch.Tensor, logits: torch.Tensor,
                              labels: torch.Tensor, domain_sizes: Sequence[int]) -> torch.Tensor:
    """Per-domain variance of per-sample CE gradients w.r.t. a linear classifier (closed form).

    Args:
        features: (N, D) classifier inputs, domains concatenated in order.
        logits: (N, C) classifier outputs for those features.
        labels: (N,) integer classes.
        domain_sizes: samples per domain, in order; they sum to N.

    Returns:
        (n_domains, C*D + C): per domain, the biased (1/n) variance over its samples of the
        gradient of that sample's CE w.r.t. the weight (C x D, row-major) then the bias.
        Differentiable w.r.t. ``features`` and ``logits``.
    """
    sizes = _check_sizes(domain_sizes, features.shape[0])
    residuals = torch.softmax(logits, dim=1) - F.one_hot(labels, logits.shape[1])
    if len(set(sizes)) == 1:  # the usual case: one batched product for all domains
        shape = (len(sizes), sizes[0])
        return _moment_variance(residuals.reshape(*shape, -1), features.reshape(*shape, -1))
    return torch.stack([_moment_variance(r, z)
                        for r, z in zip(residuals.split(sizes), features.split(sizes))])


def per_sample_variances(grads: torch.Tensor, domain_sizes: Sequence[int]) -> torch.Tensor:
    """Centred, biased variance per domain of per-sample gradients ``grads`` (N, P) -> (E, P)."""
    sizes = _check_sizes(domain_sizes, grads.shape[0])
    return torch.stack([(g - g.mean(0)).square().mean(0) for g in grads.split(sizes)])


def backpack_domain_gradient_variances(
        classifier: nn.Linear, features: torch.Tensor, labels: torch.Tensor,
        domain_sizes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The same variances as :func:`domain_gradient_variances`, from BackPACK's BatchGrad.

    Args:
        classifier: an ``nn.Linear`` already passed through ``backpack.extend``.
        features: (N, D); pass a leaf (``z.detach().requires_grad_()``): the backward runs into
            every leaf upstream and only ``features`` and the classifier are cleaned up here.
        labels: (N,) integer classes.
        domain_sizes: samples per domain, in order.

    Returns:
        (variances (E, C*D + C), logits (N, C)), both differentiable w.r.t. ``features`` and the
        classifier.
    """
    logits = classifier(features)
    # Summed CE: grad_batch then holds the per-sample gradients themselves (a mean would divide
    # them by N). No ``inputs=``: with it BackPACK 1.7.1 leaves grad_batch unset.
    loss = F.cross_entropy(logits, labels, reduction="sum")
    with backpack(BatchGrad()), warnings.catch_warnings():
        # torch warns of the create_graph reference cycle; we break it below (grad = None).
        warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
        loss.backward(retain_graph=True, create_graph=True)
    grads = torch.cat([classifier.weight.grad_batch.flatten(1),
                       classifier.bias.grad_batch.flatten(1)], dim=1)
    for tensor in (classifier.weight, classifier.bias, features):
        tensor.grad = None  # create_graph grads form a parameter <-> grad reference cycle
    del classifier.weight.grad_batch, classifier.bias.grad_batch
    return per_sample_variances(grads, domain_sizes), logits


def ema_step(previous: torch.Tensor, current: torch.Tensor,
             ema: float) -> tuple[torch.Tensor, torch.Tensor]:
    """DomainBed's moving average with the 1/(1 - ema) correction.

    With ``m_hat = ema * previous.detach() + (1 - ema) * current``, returns
    ``(m_hat.detach(), m_hat / (1 - ema))``: what to store and what to use. Only ``current``
    carries a gradient, with derivative 1; from ``previous`` = 0 the used value is ``current``.
    Computed as ``current + ema / (1 - ema) * previous`` (one fused op; same value up to rounding).
    """
    used = torch.add(current, previous.detach(), alpha=ema / (1 - ema))
    return used.detach() * (1 - ema), used


def fishr_penalty(variances: torch.Tensor) -> torch.Tensor:
    """Mean over domains of the mean over coordinates of (u_e - mean_e u_e)^2, for (E, P) input."""
    if variances.dim() != 2:
        raise ValueError(f"variances must be (n_domains, n_coordinates), got "
                         f"{tuple(variances.shape)}")
    # Not variances.var(0): on CPU that strided reduction over a few domains is ~20x slower.
    return (variances - variances.mean(0)).square().mean()


class Fishr(Algorithm):
    """Fishr: ERM plus the cross-domain matching of gradient variances (see the module doc).

    Reads hparams ``lambda``, ``penalty_anneal_iters``, ``ema`` and ``fishr_backend``
    (``closed_form`` default, or ``backpack``). The classifier must be linear.
    """

    WEIGHT_BEFORE_ANNEAL = 0.0  # DomainBed's Fishr: no penalty at all during the warm-up

    @classmethod
    def check_hparams(cls, hparams: dict) -> None:
        """Fishr needs a linear classifier, a known backend and ema in [0, 1)."""
        if hparams.get("nonlinear_classifier", False):
            raise UserError("Fishr needs a linear classifier: set hparam nonlinear_classifier "
                            "to False")
        backend = str(hparams.get("fishr_backend", "closed_form"))
        if backend not in BACKENDS:
            raise UserError(f"unknown fishr_backend {backend!r}: use one of "
                            f"{', '.join(BACKENDS)}")
        ema = float(hparams.get("ema", 0.95))
        if not 0.0 <= ema < 1.0:
            raise UserError(f"Fishr hparam ema={ema} is outside [0, 1): pick e.g. 0.95")

    def build_networks(self, featurizer: nn.Module | None) -> None:
        """ERM's networks, plus the per-domain EMA buffer (and BackPACK's hooks if asked)."""
        super().build_networks(featurizer)
        self.backend = str(self.hparams.get("fishr_backend", "closed_form"))
        self.ema = float(self.hparam("ema"))
        self.penalty_weight = float(self.hparam("lambda"))
        self.anneal_iters = int(self.hparam("penalty_anneal_iters"))
        n_coords = self.classifier.weight.numel() + self.classifier.bias.numel()
        # m per domain (not m / (1 - ema)); a buffer, so it follows .to(device) and is saved.
        self.register_buffer("ema_variances", torch.zeros(self.num_domains, n_coords))
        if self.backend == "backpack":
            extend(self.classifier)  # in place: hooks that record the classifier's inputs

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step on NLL + weight * penalty; returns ``loss``, ``nll`` and ``penalty``."""
        if len(minibatches) != self.num_domains:
            raise ValueError(f"Fishr got {len(minibatches)} minibatches for "
                             f"{self.num_domains} training domains")
        all_x, all_y = pooled(minibatches)
        sizes = [x.shape[0] for x, _ in minibatches]
        features = self.featurizer(all_x)
        if self.backend == "closed_form":
            logits = self.classifier(features)
            variances = domain_gradient_variances(features, logits, all_y, sizes)
        else:
            # Split the graph at the features (see the module doc).
            leaf = features.detach().requires_grad_()
            variances, logits = backpack_domain_gradient_variances(
                self.classifier, leaf, all_y, sizes)
        self.ema_variances, used = ema_step(self.ema_variances, variances, self.ema)
        penalty = fishr_penalty(used)
        nll = F.cross_entropy(logits, all_y)

        weight = self.annealed_weight(self.penalty_weight, self.anneal_iters)
        self.update_count += 1

        objective = nll + weight * penalty
        self.optimizer.zero_grad()
        objective.backward()
        if self.backend == "backpack" and features.requires_grad:
            features.backward(leaf.grad)  # d objective / d features, through the featurizer once
        self.optimizer.step()
        return {"loss": objective.item(), "nll": nll.item(), "penalty": penalty.item()}
