"""CDANN: domain-adversarial training conditioned on the class (see adversarial.py)."""

from __future__ import annotations

from fishr_tune.algorithms.adversarial import Adversarial


class CDANN(Adversarial):
    """Conditional DANN: features + class embedding in, class-balanced discriminator loss."""

    CONDITIONAL = True
