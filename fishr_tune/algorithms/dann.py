"""DANN: domain-adversarial training with an unconditional discriminator (see adversarial.py)."""

from __future__ import annotations

from fishr_tune.algorithms.adversarial import Adversarial


class DANN(Adversarial):
    """Unconditional DANN: the discriminator sees the features alone, plain mean CE."""

    CONDITIONAL = False
