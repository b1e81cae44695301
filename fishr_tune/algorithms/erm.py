"""ERM: empirical risk minimisation over the pooled training domains (DomainBed's baseline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm


class ERM(Algorithm):
    """Mean cross-entropy on the concatenation of all domains' minibatches, one Adam step."""

    def update(self, minibatches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
        """One Adam step on the pooled batch; returns ``{"loss": mean CE}``."""
        all_x = torch.cat([x for x, _ in minibatches])
        all_y = torch.cat([y for _, y in minibatches])
        loss = F.cross_entropy(self.predict(all_x), all_y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.update_count += 1
        return {"loss": loss.item()}
