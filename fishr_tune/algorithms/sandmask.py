"""SAND-mask (Shahtalebi et al. 2021): a smooth, variance-aware AND-mask."""

from __future__ import annotations

import torch

from fishr_tune.algorithms.gradient_masking import GradientMasking
from fishr_tune.algorithms.penalties import sand_mask


class SANDMask(GradientMasking):
    """Reads ``tau`` and ``k``; each parameter's gradient is ``sand_mask`` of its per-domain
    gradients (Adam betas (0.9, 0.999): DomainBed's explicit choice, torch's default)."""

    def combine(self, grads: torch.Tensor) -> torch.Tensor:
        """``sand_mask(grads, tau, k)``."""
        return sand_mask(grads, float(self.hparam("tau")), float(self.hparam("k")))
