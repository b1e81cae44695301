"""AND-mask (Parascandolo et al. 2021): update only where the domains' gradient signs agree."""

from __future__ import annotations

import torch

from fishr_tune.algorithms.gradient_masking import GradientMasking
from fishr_tune.algorithms.penalties import and_mask


class ANDMask(GradientMasking):
    """Reads ``tau``; each parameter's gradient is ``and_mask`` of its per-domain gradients."""

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        """``and_mask(grads, tau)``."""
        return and_mask(grads, float(self.hparam("tau")))
