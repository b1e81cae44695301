"""MLDG and Fish against hand-written DomainBed-style steps on a tiny linear model.

The model is a flatten featurizer + Linear(4, 3); the reference writes Adam's update by hand
(bias-corrected moments), the cross-entropy gradients come from autograd on plain tensors.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fishr_tune.algorithms import MLDG, Fish

LR, WD, EPS, BETAS = 0.01, 0.001, 1e-8, (0.9, 0.999)
HPARAMS = {"lr": LR, "weight_decay": WD, "batch_size": 3, "nonlinear_classifier": False,
           "mldg_beta": 0.7, "meta_lr": 0.5}


class Flat(nn.Flatten):
    n_outputs = 4


class Adam:
    """Adam on a list of tensors, written out (torch's L2-style weight decay)."""

    def __init__(self, n):
        self.m, self.v, self.t = [0.0] * n, [0.0] * n, 0

    def step(self, params, grads):
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            g = g + WD * p
            self.m[i] = BETAS[0] * self.m[i] + (1 - BETAS[0]) * g
            self.v[i] = BETAS[1] * self.v[i] + (1 - BETAS[1]) * g * g
            m_hat = self.m[i] / (1 - BETAS[0] ** self.t)
            v_hat = self.v[i] / (1 - BETAS[1] ** self.t)
            out.append(p - LR * m_hat / (v_hat.sqrt() + EPS))
        return out


def _ce_grads(params, x, y):
    w, b = (p.detach().requires_grad_() for p in params)
    loss = F.cross_entropy(x.flatten(1) @ w.t() + b, y)
    return loss, torch.autograd.grad(loss, (w, b))


def _build(cls):
    torch.manual_seed(0)
    return cls((1, 2, 2), 3, 3, HPARAMS, featurizer=Flat()).double()


def _batches(step, sizes=(3, 3, 2)):
    gen = torch.Generator().manual_seed(step)
    return [(torch.randn(n, 1, 2, 2, generator=gen, dtype=torch.float64),
             torch.randint(0, 3, (n,), generator=gen)) for n in sizes]


def _params(algorithm):
    return [p.detach().clone() for p in (algorithm.classifier.weight, algorithm.classifier.bias)]


def test_mldg_update_matches_a_hand_written_step():
    algorithm = _build(MLDG)
    params = _params(algorithm)
    batches = _batches(0)
    torch.manual_seed(42)
    order = torch.randperm(3).tolist()  # the pairs DomainBed's random_pairs_of_minibatches draws
    beta, n_domains = HPARAMS["mldg_beta"], 3
    total = [torch.zeros_like(p) for p in params]
    objective = 0.0
    for pos, i in enumerate(order):
        j = order[(pos + 1) % 3]
        n = min(len(batches[i][0]), len(batches[j][0]))
        (xi, yi), (xj, yj) = [(x[:n], y[:n]) for x, y in (batches[i], batches[j])]
        loss_i, g_i = _ce_grads(params, xi, yi)
        stepped = Adam(2).step(params, g_i)  # a fresh inner Adam per pair
        loss_j, g_j = _ce_grads(stepped, xj, yj)
        total = [t + gi / n_domains + beta * gj / n_domains for t, gi, gj in zip(total, g_i, g_j)]
        objective += loss_i.item() + beta * loss_j.item()
    want = Adam(2).step(params, total)

    torch.manual_seed(42)
    values = algorithm.update(batches)
    for got, expected in zip(_params(algorithm), want):
        torch.testing.assert_close(got, expected)
    assert values["loss"] == pytest.approx(objective / n_domains)


def test_fish_updates_match_hand_written_steps():
    algorithm = _build(Fish)
    params = _params(algorithm)
    inner_adam = Adam(2)  # one inner Adam whose state carries over from step to step
    for step in range(2):
        batches = _batches(step)
        inner = params
        for x, y in batches:
            loss, grads = _ce_grads(inner, x, y)
            inner = inner_adam.step(inner, grads)
        params = [p + HPARAMS["meta_lr"] * (q - p) for p, q in zip(params, inner)]
        values = algorithm.update(batches)
        for got, expected in zip(_params(algorithm), params):
            torch.testing.assert_close(got, expected)
        assert values["loss"] == pytest.approx(loss.item())
