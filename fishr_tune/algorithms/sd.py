"""Spectral Decoupling (Pezeshki et al. 2021, eq. 25): ERM + sd_reg * mean squared logit."""

from __future__ import annotations

import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches, pooled


class SD(Algorithm):
    """Reads ``sd_reg``."""

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step; returns ``loss`` (the CE alone, as DomainBed) and ``penalty``."""
        all_x, all_y = pooled(minibatches)
        logits = self.predict(all_x)
        loss = F.cross_entropy(logits, all_y)
        penalty = logits.square().mean()
        objective = loss + float(self.hparam("sd_reg")) * penalty
        self.take_step(objective)
        return {"loss": loss.item(), "penalty": penalty.item()}
