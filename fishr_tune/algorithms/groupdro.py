"""GroupDRO (Sagawa et al. 2020, Algorithm 1): minimise the q-weighted domain losses, q updated by
an exponentiated-gradient step every update."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fishr_tune.algorithms.base import Algorithm, Minibatches
from fishr_tune.algorithms.penalties import groupdro_weights


class GroupDRO(Algorithm):
    """Reads ``groupdro_eta``. ``q`` (one weight per domain, ones at the start as DomainBed's
    first step sets them) is a buffer, so it is saved with the model."""

    def build_networks(self, featurizer: nn.Module | None) -> None:
        """ERM's networks and the buffer ``q``."""
        super().build_networks(featurizer)
        self.register_buffer("q", torch.ones(self.num_domains))

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step on dot(losses, new q); returns ``loss``."""
        # One forward per domain, as DomainBed.
        losses = torch.stack([F.cross_entropy(self.predict(x), y) for x, y in minibatches])
        self.q = groupdro_weights(self.q, losses, float(self.hparam("groupdro_eta")))
        loss = torch.dot(losses, self.q)
        self.take_step(loss)
        return {"loss": loss.item()}
