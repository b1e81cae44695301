"""Deep CORAL (Sun and Saenko 2016): match the domains' feature means and covariances."""

from __future__ import annotations

from fishr_tune.algorithms.feature_matching import FeatureMatching
from fishr_tune.algorithms.penalties import coral_penalty


class CORAL(FeatureMatching):
    """Reads ``mmd_gamma`` (the penalty weight); ``penalty`` is ``coral_penalty``. Needs at least
    2 samples per domain (unbiased covariances)."""

    distance = staticmethod(coral_penalty)
