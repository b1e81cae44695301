"""ERM: empirical risk minimisation over the pooled training domains (DomainBed's baseline)."""

from __future__ import annotations

import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches, pooled


class ERM(Algorithm):
    """Mean cross-entropy on the concatenation of all domains' minibatches, one Adam step."""

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step on the pooled batch; returns ``{"loss": mean CE}``."""
        all_x, all_y = pooled(minibatches)
        loss = F.cross_entropy(self.predict(all_x), all_y)
        self.take_step(loss)
        return {"loss": loss.item()}
