"""IGA (Koyama and Yamaguchi 2020, arXiv:2008.01883v2): ERM + the variance of the domains'
gradients over ALL parameters (the Fishr paper's appendix C.2.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches
from fishr_tune.algorithms.penalties import iga_penalty


class IGA(Algorithm):
    """Reads ``penalty`` (the weight). Per domain one forward and one create_graph gradient of
    its mean CE w.r.t. every parameter; objective = mean domain CE + penalty * ``iga_penalty``,
    whose backward is a double backward: about |E| + 1 times ERM's cost."""

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step; returns ``loss`` (mean domain CE) and ``penalty``."""
        params = list(self.network.parameters())
        losses, grads = [], []
        for x, y in minibatches:
            loss = F.cross_entropy(self.network(x), y)
            losses.append(loss)
            domain_grads = torch.autograd.grad(loss, params, create_graph=True)
            grads.append(torch.cat([g.flatten() for g in domain_grads]))
        mean_loss = torch.stack(losses).mean()
        penalty = iga_penalty(torch.stack(grads))
        self.take_step(mean_loss + float(self.hparam("penalty")) * penalty)
        return {"loss": mean_loss.item(), "penalty": penalty.item()}
