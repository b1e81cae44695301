"""The public penalty functions: values computed by hand on tiny problems, and their gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

from fishr_tune.algorithms import (and_mask, coral_penalty, groupdro_weights, iga_penalty,
                                   irm_penalty, mmd_penalty, sand_mask, vrex_penalty)
from fishr_tune.algorithms.penalties import MMD_GAMMAS

D64 = torch.float64


def _dummy_scale_reference(logits, labels):
    """DomainBed's route: autograd through a dummy scale s = 1, even x odd halves."""
    scale = torch.tensor(1.0, dtype=logits.dtype, requires_grad=True)
    halves = []
    for start in (0, 1):
        loss = F.cross_entropy(logits[start::2] * scale, labels[start::2])
        halves.append(torch.autograd.grad(loss, [scale], create_graph=True)[0])
    return halves[0] * halves[1]


def test_irm_penalty_by_hand():
    # even half: f = [1, 0], y = 0: d/ds CE = p.f - f_y = e/(e+1) - 1 = -1/(e+1);
    # odd half: f = [0, 2], y = 1: 2 e^2/(1+e^2) - 2 = -2/(1+e^2).
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=D64)
    labels = torch.tensor([0, 1])
    want = 2 / ((math.e + 1) * (1 + math.e ** 2))
    assert irm_penalty(logits, labels).item() == pytest.approx(want, rel=1e-12)


def test_irm_penalty_matches_the_dummy_scale_route_value_and_gradient():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 3, generator=gen, dtype=D64, requires_grad=True)
    labels = torch.randint(0, 3, (7,), generator=gen)
    got, want = irm_penalty(logits, labels), _dummy_scale_reference(logits, labels)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, logits)[0],
                               torch.autograd.grad(want, logits)[0])
    with pytest.raises(ValueError, match="at least 2"):
        irm_penalty(logits[:1], labels[:1])


def test_vrex_penalty_by_hand_and_gradient():
    losses = torch.tensor([1.0, 3.0], dtype=D64, requires_grad=True)
    penalty = vrex_penalty(losses)
    assert penalty.item() == 1.0  # mean 2, ((-1)^2 + 1^2) / 2
    assert torch.autograd.grad(penalty, losses)[0].tolist() == [-1.0, 1.0]  # 2 (l - mean) / E


def test_coral_penalty_by_hand():
    x = torch.tensor([[0.0], [2.0]], dtype=D64)  # mean 1, unbiased variance 2
    y = torch.tensor([[1.0], [1.0], [4.0]], dtype=D64)  # mean 2, unbiased variance 3
    assert coral_penalty(x, y).item() == pytest.approx(1.0 + 1.0)  # (1-2)^2 + (2-3)^2
    # D = 2: the MEANS over the 2 mean coordinates and the 4 covariance entries.
    x2 = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=D64)
    y2 = torch.tensor([[0.0, 0.0], [0.0, 0.0]], dtype=D64)
    assert coral_penalty(x2, y2).item() == pytest.approx(1.0 / 2 + 4.0 / 4)


def test_mmd_penalty_by_hand():
    x, y = torch.tensor([[0.0]], dtype=D64), torch.tensor([[1.0]], dtype=D64)
    # K(a, a) = sum_g exp(-g * 1e-30) = 7 (the clamp), K(x, y) = sum_g exp(-g).
    want = 14.0 - 2 * sum(math.exp(-g) for g in MMD_GAMMAS)
    assert mmd_penalty(x, y).item() == pytest.approx(want, rel=1e-12)
    assert mmd_penalty(x, x).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("penalty", [coral_penalty, mmd_penalty])
def test_feature_penalties_gradients(penalty):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, generator=gen, dtype=D64, requires_grad=True)
    y = (torch.randn(4, 3, generator=gen, dtype=D64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(penalty, (x, y))


def test_groupdro_weights_by_hand():
    q = torch.tensor([0.5, 0.5])
    new = groupdro_weights(q, torch.tensor([0.0, math.log(3.0)]), eta=1.0)
    torch.testing.assert_close(new, torch.tensor([0.25, 0.75]))  # [0.5, 1.5] / 2
    assert not new.requires_grad and q.tolist() == [0.5, 0.5]


def test_and_mask_by_hand():
    grads = torch.tensor([[1.0, -1.0, 2.0], [3.0, 1.0, 2.0]], dtype=D64)
    # signs agree on coordinates 0 and 2: mean [2, 0, 2] masked to [2, 0, 2], kept 2/3.
    torch.testing.assert_close(and_mask(grads, tau=1.0),
                               torch.tensor([2.0, 0.0, 2.0], dtype=D64) / (2 / 3 + 1e-10))
    # tau = 0 keeps everything: the plain mean
    torch.testing.assert_close(and_mask(grads, tau=0.0), grads.mean(0))


def test_sand_mask_by_hand():
    grads = torch.tensor([[1.0, -1.0], [3.0, 1.0]], dtype=D64)
    # unbiased variances 2 and 2; agreement |mean sign| - tau = 0.5 and -0.5 (-> mask 0);
    # mask0 = tanh(k / 2 * 0.5); result0 = mask0 * 2 / (mask0 / 2) = 4.
    got = sand_mask(grads, tau=0.5, k=1.0)
    torch.testing.assert_close(got, torch.tensor([4.0, 0.0], dtype=D64))
    # DomainBed's default tau = 1: no coordinate can exceed it, so the gradient is 0.
    assert sand_mask(grads, tau=1.0, k=10.0).abs().sum() == 0
    # one domain: the variance is NaN, replaced by 1e-17 (a very steep, finite mask)
    assert torch.isfinite(sand_mask(grads[:1], tau=0.5, k=1.0)).all()


def test_iga_penalty_by_hand_and_gradient():
    grads = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=D64, requires_grad=True)
    penalty = iga_penalty(grads)
    assert penalty.item() == 4.0  # mean [2, 3]; four squared deviations of 1
    torch.testing.assert_close(torch.autograd.grad(penalty, grads)[0],
                               torch.tensor([[-2.0, -2.0], [2.0, 2.0]], dtype=D64))
