"""Fish (Shi et al. 2022, "Gradient Matching for Domain Generalization"), as DomainBed: an inner
clone takes one Adam step per domain in turn, then the weights move towards the clone."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from fishr_tune.algorithms.base import Algorithm, Minibatches


class Fish(Algorithm):
    """Reads ``meta_lr``. Per step: ``inner_network`` gets the network's weights, takes one step
    of the ``inner`` Adam (lr, weight_decay) on each domain's CE in order, and every entry of the
    network's state_dict becomes w + meta_lr * (w_inner - w).

    DomainBed rebuilds the clone every step but carries its Adam state over
    (``optimizer_inner_state``); keeping one clone whose weights are overwritten and one Adam is
    the same computation, and puts that Adam in ``optimizers`` (saved and restored). Like
    DomainBed, Fish has no outer optimizer: the interpolation is the update.
    """

    def build_networks(self, featurizer: nn.Module | None) -> None:
        """ERM's networks and the inner clone."""
        super().build_networks(featurizer)
        self.inner_network = copy.deepcopy(self.network)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Only the inner Adam."""
        return {"inner": self.adam(self.inner_network.parameters())}

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Fish step; returns ``loss``, the last domain's inner CE (as DomainBed)."""
        self.inner_network.load_state_dict(self.network.state_dict())
        inner_opt = self.optimizers["inner"]
        for x, y in minibatches:
            loss = F.cross_entropy(self.inner_network(x), y)
            inner_opt.zero_grad()
            loss.backward()
            inner_opt.step()
        meta_lr = float(self.hparam("meta_lr"))
        inner_state = self.inner_network.state_dict()
        with torch.no_grad():
            for name, value in self.network.state_dict().items():
                if value.is_floating_point():
                    value.add_(meta_lr * (inner_state[name] - value))
        self.update_count += 1
        return {"loss": loss.item()}
