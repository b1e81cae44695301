"""The registry and Fishr's schedule (the contract suite is test_algorithms_contract.py)."""

import pytest
import torch

from fishr_tune.algorithms import ERM, Fishr, get_algorithm_class
from fishr_tune.errors import UserError

SHAPE, CLASSES, DOMAINS, BATCH = (2, 8, 8), 2, 2, 8
HPARAMS = {"lr": 1e-3, "weight_decay": 1e-4, "batch_size": BATCH, "resnet18": False,
           "resnet_dropout": 0.0, "nonlinear_classifier": False, "data_augmentation": True,
           "class_balanced": False, "lambda": 10.0, "penalty_anneal_iters": 3, "ema": 0.95,
           "fishr_backend": "closed_form"}


def _minibatches(step, domains=DOMAINS):
    gen = torch.Generator().manual_seed(1000 + step)
    return [(torch.randn(BATCH, *SHAPE, generator=gen),
             torch.randint(0, CLASSES, (BATCH,), generator=gen)) for _ in range(domains)]


def _build(cls, seed=0, **overrides):
    torch.manual_seed(seed)
    return cls(SHAPE, CLASSES, DOMAINS, {**HPARAMS, **overrides})


def _adam_steps(algorithm):
    return {int(s["step"]) for s in algorithm.optimizer.state.values()}


@pytest.mark.parametrize("backend", ["closed_form", "backpack"])
@pytest.mark.parametrize("anneal", [1, 3])  # the Adam rebuild before / after the save
def test_fishr_resume_is_bit_identical(backend, anneal):
    algorithm = _build(Fishr, fishr_backend=backend, penalty_anneal_iters=anneal)
    for step in range(2):
        algorithm.update(_minibatches(step))
    saved = algorithm.state()
    after = [algorithm.update(_minibatches(2 + i)) for i in range(3)]

    restored = _build(Fishr, seed=7, fishr_backend=backend, penalty_anneal_iters=anneal)
    restored.load_state(saved)
    assert [restored.update(_minibatches(2 + i)) for i in range(3)] == after
    for (name, got), want in zip(restored.state_dict().items(), algorithm.state_dict().values()):
        assert torch.equal(got, want), name
    assert restored.ema_variances.abs().sum() > 0
    assert _adam_steps(restored) == _adam_steps(algorithm)


def test_state_is_a_snapshot():
    algorithm = _build(Fishr)
    algorithm.update(_minibatches(0))
    saved = algorithm.state()
    ema_before = saved["model"]["ema_variances"].clone()
    algorithm.update(_minibatches(1))
    assert torch.equal(saved["model"]["ema_variances"], ema_before)
    assert saved["update_count"] == 1


def test_penalty_weight_zero_before_anneal_then_lambda():
    algorithm = _build(Fishr, penalty_anneal_iters=3, **{"lambda": 10.0})
    for step in range(6):
        values = algorithm.update(_minibatches(step))
        assert values["penalty"] > 0  # computed during the warm-up too
        if step < 3:
            assert values["loss"] == values["nll"]
        else:
            expected = values["nll"] + 10.0 * values["penalty"]
            assert values["loss"] == pytest.approx(expected, rel=1e-6)


def test_adam_rebuilt_exactly_at_the_anneal_step():
    algorithm = _build(Fishr, penalty_anneal_iters=3)
    first = algorithm.optimizer
    for step in range(3):
        algorithm.update(_minibatches(step))
    assert algorithm.optimizer is first and _adam_steps(algorithm) == {3}
    created = []
    original = algorithm.make_optimizer

    def spy():
        optimizer = original()
        created.append((algorithm.update_count, len(optimizer.state)))
        return optimizer

    algorithm.make_optimizer = spy
    algorithm.update(_minibatches(3))
    assert created == [(3, 0)]  # built at update_count == anneal, with empty state
    assert algorithm.optimizer is not first and _adam_steps(algorithm) == {1}
    algorithm.update(_minibatches(4))
    assert len(created) == 1 and _adam_steps(algorithm) == {2}


def test_no_adam_rebuild_when_anneal_is_zero():
    algorithm = _build(Fishr, penalty_anneal_iters=0, **{"lambda": 10.0})
    first = algorithm.optimizer
    values = [algorithm.update(_minibatches(step)) for step in range(3)]
    assert algorithm.optimizer is first and _adam_steps(algorithm) == {3}
    assert values[0]["loss"] == pytest.approx(values[0]["nll"] + 10 * values[0]["penalty"])


def test_fishr_first_step_penalty_uses_raw_variances():
    """First step: u_e = v_e (EMA from zero with the 1/(1-ema) correction)."""
    from fishr_tune.algorithms.fishr import domain_gradient_variances, fishr_penalty

    algorithm = _build(Fishr)
    batches = _minibatches(0)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    with torch.no_grad():
        features = algorithm.featurizer(x)
        variances = domain_gradient_variances(features, algorithm.classifier(features), y,
                                              [BATCH] * DOMAINS)
    penalty = algorithm.update(batches)["penalty"]
    assert penalty == pytest.approx(fishr_penalty(variances).item(), rel=1e-5)
    torch.testing.assert_close(algorithm.ema_variances, 0.05 * variances)


def test_registry_lookup():
    assert get_algorithm_class("fishr") is Fishr
    assert get_algorithm_class("E_R-M") is ERM
    assert get_algorithm_class("irm").__name__ == "IRM"
    with pytest.raises(UserError, match="ERM, Fish, IRM"):
        get_algorithm_class("SelfReg")


@pytest.mark.parametrize("overrides,message", [
    ({"fishr_backend": "jax"}, "closed_form, backpack"),
    ({"nonlinear_classifier": True}, "nonlinear_classifier"),
    ({"ema": 1.0}, "ema"),
])
def test_fishr_bad_hparams(overrides, message):
    with pytest.raises(UserError, match=message):
        _build(Fishr, **overrides)


def test_missing_hparam_is_a_user_error():
    hparams = {k: v for k, v in HPARAMS.items() if k != "lr"}
    with pytest.raises(UserError, match="'lr'"):
        ERM(SHAPE, CLASSES, DOMAINS, hparams)
