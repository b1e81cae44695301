"""The shared loop of ANDMask and SANDMask: per-domain gradients, combined per parameter by a
masking rule instead of averaged, then one Adam step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches


class GradientMasking(Algorithm):
    """Each domain's mean CE gets its own forward and gradient; every parameter's gradient is
    ``combine`` of the (E, ...) stack of them (DomainBed's ``mask_grads``)."""

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        """The gradient to apply, from one parameter's per-domain gradients (E, ...)."""
        raise NotImplementedError

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step on the masked gradients; returns ``loss`` (mean domain CE)."""
        params = list(self.network.parameters())
        per_domain = []
        mean_loss = 0.0
        for x, y in minibatches:
            loss = F.cross_entropy(self.network(x), y)
            mean_loss += loss.item() / len(minibatches)
            per_domain.append(torch.autograd.grad(loss, params))
        self.optimizer.zero_grad()
        for i, param in enumerate(params):
            param.grad = self.combine(torch.stack([grads[i] for grads in per_domain]))
        self.optimizer.step()
        self.update_count += 1
        return {"loss": mean_loss}
