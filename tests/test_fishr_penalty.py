"""Fishr's variances and penalty: closed form vs BackPACK vs a naive per-sample autograd loop."""

import pytest
import torch
import torch.nn.functional as F
from backpack import extend
from torch import nn

from fishr_tune.algorithms.fishr import (
    backpack_domain_gradient_variances,
    domain_gradient_variances,
    ema_step,
    fishr_penalty,
)

# (features D, classes C, domain sizes): C=2, unequal domains, a 1-sample domain, a wide layer.
SHAPES = [(3, 2, [5, 5]), (16, 7, [8, 8, 8]), (33, 10, [4, 9, 1, 6]), (128, 65, [16, 16, 16])]


def _problem(dim, classes, sizes, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    n = sum(sizes)
    z = (3 * torch.randn(n, dim, generator=gen, dtype=dtype)).requires_grad_()
    weight = torch.randn(classes, dim, generator=gen, dtype=dtype).div(dim ** 0.5)
    bias = torch.randn(classes, generator=gen, dtype=dtype)
    y = torch.randint(0, classes, (n,), generator=gen)
    return z, weight.requires_grad_(), bias.requires_grad_(), y


def _naive(z, weight, bias, y, sizes):
    """Per-sample gradients one sample at a time (create_graph), then torch.var per domain."""
    grads = []
    for i in range(z.shape[0]):
        loss = F.cross_entropy((z[i] @ weight.T + bias)[None], y[i:i + 1], reduction="sum")
        g_w, g_b = torch.autograd.grad(loss, (weight, bias), create_graph=True)
        grads.append(torch.cat([g_w.reshape(-1), g_b]))
    grads = torch.stack(grads)
    return torch.stack([g.var(0, correction=0) for g in grads.split(sizes)])


def _backpack(z, weight, bias, y, sizes):
    linear = extend(nn.Linear(weight.shape[1], weight.shape[0]).to(weight.dtype))
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    variances, _ = backpack_domain_gradient_variances(linear, z, y, sizes)
    return variances


def _closed(z, weight, bias, y, sizes):
    return domain_gradient_variances(z, z @ weight.T + bias, y, sizes)


def _relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("dim,classes,sizes", SHAPES)
def test_closed_form_matches_naive_and_backpack_float64(dim, classes, sizes):
    z, weight, bias, y = _problem(dim, classes, sizes)
    naive = _naive(z, weight, bias, y, sizes)
    closed = _closed(z, weight, bias, y, sizes)
    assert closed.shape == (len(sizes), classes * dim + classes)
    torch.testing.assert_close(closed, naive, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(_backpack(z, weight, bias, y, sizes), naive, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("dim,classes,sizes", SHAPES)
def test_closed_form_matches_backpack_float32(dim, classes, sizes):
    z, weight, bias, y = _problem(dim, classes, sizes, dtype=torch.float32, seed=1)
    closed = _closed(z, weight, bias, y, sizes)
    assert _relative(closed, _backpack(z, weight, bias, y, sizes)) < 1e-5
    assert _relative(closed, _naive(z, weight, bias, y, sizes)) < 1e-5


@pytest.mark.parametrize("dim,classes,sizes", SHAPES[:3])
def test_penalty_gradient_matches_naive(dim, classes, sizes):
    z, weight, bias, y = _problem(dim, classes, sizes, seed=2)
    wrt = (z, weight, bias)
    closed = torch.autograd.grad(fishr_penalty(_closed(z, weight, bias, y, sizes)), wrt)
    naive = torch.autograd.grad(fishr_penalty(_naive(z, weight, bias, y, sizes)), wrt)
    for got, want in zip(closed, naive):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-12)


def test_row_major_layout_of_one_sample_domains():
    """A 2-sample domain: variance = (g1 - g2)^2 / 4 with g = (p - onehot) outer [z; 1]."""
    z = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    logits = torch.tensor([[0.5, -0.5, 0.0], [0.0, 1.0, 2.0]], dtype=torch.float64)
    y = torch.tensor([2, 0])
    d = torch.softmax(logits, 1) - F.one_hot(y, 3)
    g = torch.cat([(d[:, :, None] * z[:, None, :]).reshape(2, -1), d], dim=1)
    expected = ((g[0] - g[1]) / 2).square()
    torch.testing.assert_close(domain_gradient_variances(z, logits, y, [2])[0], expected)


def test_penalty_is_mean_over_domains_and_coordinates():
    variances = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    # cross-domain mean is 2 everywhere: squared differences 1, 0, 1 for both domains
    assert fishr_penalty(variances).item() == pytest.approx(2 / 3)
    assert fishr_penalty(variances[:1]).item() == 0.0


def test_ema_first_step_returns_current():
    current = torch.tensor([1.0, 2.0], requires_grad=True)
    stored, used = ema_step(torch.zeros(2), current, 0.95)
    torch.testing.assert_close(used, current.detach())
    torch.testing.assert_close(stored, 0.05 * current.detach())
    assert not stored.requires_grad


def test_ema_two_steps_by_hand():
    v1 = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    v2 = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    m1, _ = ema_step(torch.zeros(2, dtype=torch.float64), v1, 0.9)
    m2, used = ema_step(m1, v2, 0.9)
    # m1 = 0.1 v1 = (0.1, 0.2); m2 = 0.9 m1 + 0.1 v2 = (0.39, 0.58); used = m2 / 0.1
    torch.testing.assert_close(m2, torch.tensor([0.39, 0.58], dtype=torch.float64))
    torch.testing.assert_close(used.detach(), torch.tensor([3.9, 5.8], dtype=torch.float64))
    used.sum().backward()
    torch.testing.assert_close(v2.grad, torch.ones(2, dtype=torch.float64))
    assert v1.grad is None  # the past is detached


def test_bad_domain_sizes_raise():
    z, weight, bias, y = _problem(3, 2, [4, 4])
    with pytest.raises(ValueError, match="domain_sizes"):
        _closed(z, weight, bias, y, [4, 5])
