"""V-REx (Krueger et al. 2021) as in DomainBed: mean domain risk + annealed variance of the
domain risks; Adam rebuilt at the anneal step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches, pooled
from fishr_tune.algorithms.penalties import vrex_penalty


class VREx(Algorithm):
    """Reads ``vrex_lambda`` and ``vrex_penalty_anneal_iters``; weight 1.0 before the anneal."""

    WEIGHT_BEFORE_ANNEAL = 1.0

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step; returns ``loss``, ``nll`` (DomainBed's quirk: the LAST domain's CE)
        and ``penalty``."""
        weight = self.annealed_weight(float(self.hparam("vrex_lambda")),
                                      int(self.hparam("vrex_penalty_anneal_iters")))
        all_x, _ = pooled(minibatches)
        logits = self.network(all_x).split([x.shape[0] for x, _ in minibatches])
        losses = torch.stack([F.cross_entropy(f, y) for f, (_, y) in zip(logits, minibatches)])
        penalty = vrex_penalty(losses)
        loss = losses.mean() + weight * penalty
        self.take_step(loss)
        return {"loss": loss.item(), "nll": losses[-1].item(), "penalty": penalty.item()}
