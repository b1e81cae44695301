"""MLDG (Li et al. 2018), DomainBed's first-order version (no second derivatives)."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches
from fishr_tune.algorithms.pairs import random_pairs_of_minibatches


class MLDG(Algorithm):
    """Reads ``mldg_beta``. Per random pair (i, j) of domains: a clone of the network takes one
    step of a FRESH Adam (lr, weight_decay) on domain i's CE; the network accumulates
    G_i / E (the clone's gradient at the original weights) plus beta * G_j / E, G_j the
    gradient of domain j's CE at the clone's stepped weights. Then one step of the main Adam."""

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One meta step; returns ``loss`` = sum over pairs of (L_i + beta L_j) / E."""
        n_domains = len(minibatches)
        beta = float(self.hparam("mldg_beta"))
        params = list(self.network.parameters())
        self.optimizer.zero_grad()
        accumulated = [torch.zeros_like(p) for p in params]
        objective = 0.0
        for (xi, yi), (xj, yj) in random_pairs_of_minibatches(minibatches):
            inner = copy.deepcopy(self.network)
            inner_params = list(inner.parameters())
            inner_opt = self.adam(inner_params)
            inner_loss = F.cross_entropy(inner(xi), yi)
            inner_opt.zero_grad()
            inner_loss.backward()
            inner_opt.step()
            for total, p in zip(accumulated, inner_params):
                if p.grad is not None:
                    total.add_(p.grad / n_domains)
            objective += inner_loss.item()
            outer_loss = F.cross_entropy(inner(xj), yj)
            grads_j = torch.autograd.grad(outer_loss, inner_params, allow_unused=True)
            objective += (beta * outer_loss).item()
            for total, g in zip(accumulated, grads_j):
                if g is not None:
                    total.add_(beta * g / n_domains)
        for p, total in zip(params, accumulated):
            p.grad = total
        self.optimizer.step()
        self.update_count += 1
        return {"loss": objective / n_domains}
