"""MMD (Li et al. 2018): match the domains' feature distributions under a Gaussian-kernel MMD."""

from __future__ import annotations

from fishr_tune.algorithms.feature_matching import FeatureMatching
from fishr_tune.algorithms.penalties import mmd_penalty


class MMD(FeatureMatching):
    """Reads ``mmd_gamma`` (the penalty weight); ``penalty`` is ``mmd_penalty``."""

    distance = staticmethod(mmd_penalty)
