"""IRM (Arjovsky et al. 2019), IRMv1 as in DomainBed: per-domain NLL + annealed dummy-scale
penalty, both averaged over domains; Adam rebuilt at the anneal step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches, pooled
from fishr_tune.algorithms.penalties import irm_penalty


class IRM(Algorithm):
    """Reads ``irm_lambda`` and ``irm_penalty_anneal_iters``; the weight is 1.0 before the
    anneal (DomainBed), ``irm_lambda`` after, and the loss is not divided by it."""

    WEIGHT_BEFORE_ANNEAL = 1.0

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step on nll + weight * penalty; returns ``loss``, ``nll`` and ``penalty``."""
        weight = self.annealed_weight(float(self.hparam("irm_lambda")),
                                      int(self.hparam("irm_penalty_anneal_iters")))
        all_x, _ = pooled(minibatches)
        logits = self.network(all_x).split([x.shape[0] for x, _ in minibatches])
        nll = torch.stack([F.cross_entropy(f, y) for f, (_, y) in zip(logits, minibatches)]).mean()
        penalty = torch.stack([irm_penalty(f, y) for f, (_, y) in zip(logits, minibatches)]).mean()
        loss = nll + weight * penalty
        self.take_step(loss)
        return {"loss": loss.item(), "nll": nll.item(), "penalty": penalty.item()}
