"""The baselines' penalties and gradient rules as pure functions (DomainBed semantics, FR era).

Each function takes tensors and returns tensors, keeps no state and touches no module, so it
serves in any training loop; the algorithm modules are thin loops around them. Line references
are to ``domainbed/algorithms.py`` at DomainBed commit b419a3a (the commit that added Fishr).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# DomainBed's MMD kernel: a sum of Gaussian kernels exp(-gamma * d^2) over these bandwidths.
MMD_GAMMAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def _dummy_scale_grad(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d/ds of the mean CE(s * logits, labels) at s = 1, in closed form.

    d CE(s f, y) / ds = sum_c softmax(s f)_c f_c - f_y, so at s = 1 it is the mean over samples
    of ((softmax(f) - onehot(y)) * f).sum(1); differentiable like the autograd route.
    """
    residuals = torch.softmax(logits, dim=1) - F.one_hot(labels, logits.shape[1])
    return (residuals * logits).sum(1).mean()


def irm_penalty(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """IRMv1's penalty for one domain, DomainBed's unbiased even/odd product.

    Args:
        logits: (N, C) logits of one domain's minibatch (N >= 2).
        labels: (N,) integer classes.

    Returns:
        A scalar: g(even samples) * g(odd samples), g = d mean-CE(s * logits) / ds at s = 1
        (DomainBed's ``IRM._irm_penalty``, algorithms.py lines 301-310, which gets g by autograd
        through a dummy scale; here in closed form). Differentiable w.r.t. ``logits``.
    """
    if logits.shape[0] < 2:
        raise ValueError("irm_penalty needs at least 2 samples (an even and an odd half)")
    return (_dummy_scale_grad(logits[0::2], labels[0::2])
            * _dummy_scale_grad(logits[1::2], labels[1::2]))


def vrex_penalty(losses: torch.Tensor) -> torch.Tensor:
    """V-REx's penalty: the biased variance of per-domain mean losses.

    Args:
        losses: (E,) each training domain's mean cross-entropy.

    Returns:
        A scalar, mean over domains of (loss_e - mean_e loss_e)^2 (``VREx.update``, lines
        364-365).
    """
    return (losses - losses.mean()).square().mean()


def coral_penalty(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Deep CORAL's distance between two domains' features (DomainBed's ``mean_cov`` MMD).

    Args:
        x: (N, D) features of one domain (N >= 2); y: (M, D) of another (M >= 2).

    Returns:
        A scalar: the MEAN over the D coordinates of the squared mean difference plus the MEAN
        over the D x D entries of the squared difference of the unbiased (1/(n-1)) covariances
        (``AbstractMMD.mmd``, lines 598-609).
    """
    mean_x, mean_y = x.mean(0, keepdim=True), y.mean(0, keepdim=True)
    cent_x, cent_y = x - mean_x, y - mean_y
    cov_x = cent_x.t() @ cent_x / (len(x) - 1)
    cov_y = cent_y.t() @ cent_y / (len(y) - 1)
    return (mean_x - mean_y).square().mean() + (cov_x - cov_y).square().mean()


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, M) squared Euclidean distances, clamped to >= 1e-30 as DomainBed's ``my_cdist``."""
    sq = a.square().sum(1, keepdim=True) + b.square().sum(1, keepdim=True).t() - 2 * a @ b.t()
    return sq.clamp_min(1e-30)


def _gaussian_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    distances = _squared_distances(a, b)
    return sum(torch.exp(-gamma * distances) for gamma in MMD_GAMMAS)


def mmd_penalty(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The (biased) MMD^2 between two domains' features with DomainBed's kernel mixture.

    Args:
        x: (N, D) features of one domain; y: (M, D) of another.

    Returns:
        A scalar, mean K(x, x) + mean K(y, y) - 2 mean K(x, y), K the sum over ``MMD_GAMMAS``
        of exp(-gamma ||a - b||^2) (``AbstractMMD.my_cdist``, ``gaussian_kernel`` and ``mmd``,
        lines 575-597).
    """
    return (_gaussian_kernel(x, x).mean() + _gaussian_kernel(y, y).mean()
            - 2 * _gaussian_kernel(x, y).mean())


def groupdro_weights(q: torch.Tensor, losses: torch.Tensor, eta: float) -> torch.Tensor:
    """GroupDRO's exponentiated-gradient step on the domain weights.

    Args:
        q: (E,) current weights (positive, summing to 1; ones at the first step).
        losses: (E,) each domain's mean loss (its gradient is not used).
        eta: the step size ``groupdro_eta``.

    Returns:
        (E,) the new weights q * exp(eta * losses), normalised to sum 1 (``GroupDRO.update``,
        lines 452-458); detached.
    """
    new = q.detach() * torch.exp(eta * losses.detach())
    return new / new.sum()


def _rescaled_masked_mean(mask: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    # DomainBed rescales by the reciprocal of the kept fraction (1e-10 guards an empty mask).
    kept = mask.sum() / mask.numel()
    return mask * mean * (1.0 / (1e-10 + kept))


def and_mask(grads: torch.Tensor, tau: float) -> torch.Tensor:
    """AND-mask: keep the coordinates where the domains' gradient signs agree enough.

    Args:
        grads: (E, ...) one parameter's gradient per domain, stacked.
        tau: agreement threshold in [0, 1].

    Returns:
        (...): the mean gradient where |mean_e sign(g_e)| >= tau, zero elsewhere, divided by the
        kept fraction of coordinates (``ANDMask.mask_grads``, lines 966-977).
    """
    mask = (torch.sign(grads).mean(0).abs() >= tau).to(grads.dtype)
    return _rescaled_masked_mean(mask, grads.mean(0))


def sand_mask(grads: torch.Tensor, tau: float, k: float) -> torch.Tensor:
    """SAND-mask: a smooth version of the AND-mask weighted by the gradients' agreement.

    Args:
        grads: (E, ...) one parameter's gradient per domain, stacked.
        tau: agreement threshold in [0, 1].
        k: steepness of the tanh (> 0).

    Returns:
        (...): the mean gradient times max(0, tanh(k / var_e(g) * (|mean_e sign(g_e)| - tau)))
        (unbiased variance over domains; NaNs become 1e-17), divided by the mean of that mask
        (``SANDMask.mask_grads``, lines 1270-1288).
    """
    if len(grads) < 2:  # one domain: DomainBed's variance is NaN, which it replaces by 1e-17
        variance = torch.full_like(grads[0], 1e-17)
    else:
        variance = grads.var(0)
        variance = torch.where(torch.isnan(variance), torch.full_like(variance, 1e-17), variance)
    agreement = torch.sign(grads).mean(0).abs() - tau
    mask = torch.tanh(k * variance.reciprocal() * agreement).clamp_min(0)
    mask = torch.where(torch.isnan(mask), torch.full_like(mask, 1e-17), mask)
    return _rescaled_masked_mean(mask, grads.mean(0))


def iga_penalty(grads: torch.Tensor) -> torch.Tensor:
    """IGA's penalty: the summed squared distance of each domain's gradient to the mean one.

    Args:
        grads: (E, P) each domain's flat gradient of its mean loss w.r.t. all parameters.

    Returns:
        A scalar, sum over domains and coordinates of (g_e - mean_e g_e)^2. As in DomainBed
        (``IGA.update``, lines 995-1009: the mean gradient comes from an ``autograd.grad``
        without ``create_graph``) the mean is a constant: only the g_e carry a gradient.
    """
    return (grads - grads.mean(0).detach()).square().sum()
