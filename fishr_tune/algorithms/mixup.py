"""Inter-domain Mixup (Xu et al. 2020; Yan et al. 2020) as in DomainBed."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches
from fishr_tune.algorithms.pairs import random_pairs_of_minibatches


class Mixup(Algorithm):
    """Reads ``mixup_alpha``. For each random pair of domains, lam ~ Beta(alpha, alpha) from
    numpy's global RNG (as DomainBed; the trial saves that RNG), a mixed input and the
    lam-weighted CE towards both labels; the sum over pairs is divided by the number of domains."""

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step on the mixed objective; returns ``loss``."""
        alpha = float(self.hparam("mixup_alpha"))
        objective = 0.0
        for (xi, yi), (xj, yj) in random_pairs_of_minibatches(minibatches):
            lam = float(np.random.beta(alpha, alpha))
            predictions = self.predict(lam * xi + (1 - lam) * xj)
            objective = objective + lam * F.cross_entropy(predictions, yi)
            objective = objective + (1 - lam) * F.cross_entropy(predictions, yj)
        objective = objective / len(minibatches)
        self.take_step(objective)
        return {"loss": objective.item()}
