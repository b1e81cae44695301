"""The shared loop of CORAL and MMD: ERM per domain + the mean pairwise feature distance."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches


class FeatureMatching(Algorithm):
    """Mean over domains of each domain's CE + ``mmd_gamma`` * the mean over domain pairs of
    ``distance(features_i, features_j)`` (DomainBed's ``AbstractMMD.update``)."""

    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step; returns ``loss`` (the mean CE alone, as DomainBed) and ``penalty``."""
        features = [self.featurizer(x) for x, _ in minibatches]  # one forward per domain
        nll = sum(F.cross_entropy(self.classifier(f), y)
                  for f, (_, y) in zip(features, minibatches)) / len(minibatches)
        pairs = list(itertools.combinations(features, 2))
        penalty = sum(self.distance(a, b) for a, b in pairs)
        if pairs:
            penalty = penalty / len(pairs)
        self.take_step(nll + float(self.hparam("mmd_gamma")) * penalty)
        penalty = penalty.item() if torch.is_tensor(penalty) else float(penalty)
        return {"loss": nll.item(), "penalty": penalty}
