"""The contract suite: every registered algorithm, hparams from search_spaces, on every input kind.

Input kinds: the embedded 8x8 digits (RotatedDigits' 1x8x8 with 10 classes, ColoredDigits'
2x8x8), 28x28 MNIST (ColoredMNIST's 2x28x28 through DomainBed's MNIST CNN) and 224x224 images
(PACS, 7 classes): the same ResNet featurizer code, but ResNet-18 with random weights and fed
32x32 images (the smallest size its five stride-2 stages accept), so a case costs seconds; the
featurizer is built for the declared (3, 224, 224) shape, ARM's first convolution widened to 4.
A new algorithm is tested by its one registry line.
"""

import numpy as np
import pytest
import torch

from fishr_tune.algorithms import ALGORITHMS
from search_spaces import resolve_hparams

BATCH = 4
HPARAMS_SEED = 1
# name -> (dataset, input shape, classes, fed spatial size, hparam overrides)
KINDS = {
    "digits1x8": ("RotatedDigits", (1, 8, 8), 10, 8, {}),
    "digits2x8": ("ColoredDigits", (2, 8, 8), 2, 8, {}),
    "mnist28": ("ColoredMNIST", (2, 28, 28), 2, 28, {}),
    "resnet224": ("PACS", (3, 224, 224), 7, 32, {"resnet18": True}),
}
# Hparams: DomainBed's random draw hparams_seed 1 (not the defaults: SANDMask's default tau = 1
# makes its mask 0 everywhere, |mean sign| - tau <= 0, so it would never move a parameter; a real
# DomainBed property, tested in test_penalties). A few hparams are set for the suite: a small
# batch (ARM's support size), penalties that act from the first step, and a discriminator step
# in the first updates.
SUITE_OVERRIDES = {"batch_size": BATCH, "penalty_anneal_iters": 1, "irm_penalty_anneal_iters": 1,
                   "vrex_penalty_anneal_iters": 1, "d_steps_per_g_step": 1}


def _hparams(name, kind):
    dataset, *_, extra = KINDS[kind]
    from search_spaces import definitions

    names = {h.name for h in definitions(name, dataset)}
    overrides = {k: v for k, v in {**SUITE_OVERRIDES, **extra}.items() if k in names}
    return resolve_hparams(name, dataset, HPARAMS_SEED, 0, overrides)


def _build(name, kind, seed=0, domains=2):
    _, shape, classes, *_ = KINDS[kind]
    torch.manual_seed(seed)
    return ALGORITHMS[name](shape, classes, domains, _hparams(name, kind), weights="none")


def _minibatches(kind, step, sizes=(BATCH, BATCH)):
    _, shape, classes, side, _ = KINDS[kind]
    gen = torch.Generator().manual_seed(1000 + step)
    return [(torch.rand(n, shape[0], side, side, generator=gen),
             torch.randint(0, classes, (n,), generator=gen)) for n in sizes]


def _seed_rngs(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


def _params(algorithm):
    return {n: p.detach().clone() for n, p in algorithm.named_parameters() if p.requires_grad}


def _train(algorithm, kind, steps, sizes=(BATCH, BATCH), first=0):
    outputs = []
    for step in range(first, first + steps):
        outputs.append(algorithm.update(_minibatches(kind, step, sizes)))
    return outputs


CASES = [(name, kind, sizes) for name in ALGORITHMS
         for kind, sizes in [("digits2x8", (BATCH, BATCH)), ("digits2x8", (BATCH, BATCH + 2)),
                             ("digits1x8", (BATCH, BATCH)), ("mnist28", (BATCH, BATCH)),
                             ("resnet224", (BATCH, BATCH))]]


@pytest.mark.parametrize("name,kind,sizes", CASES, ids=[f"{n}-{k}-{s[0]}x{s[1]}"
                                                        for n, k, s in CASES])
def test_updates_train_every_parameter(name, kind, sizes):
    algorithm = _build(name, kind)
    before = _params(algorithm)
    _seed_rngs(3)
    outputs = _train(algorithm, kind, 3, sizes)
    for values in outputs:
        assert values and all(type(v) is float and np.isfinite(v) for v in values.values())
    assert algorithm.update_count == 3
    after = _params(algorithm)
    unchanged = [n for n in before if torch.equal(before[n], after[n])]
    assert not unchanged, f"{name}: parameters without a gradient step: {unchanged}"
    algorithm.eval()
    x = _minibatches(kind, 9, (6,))[0][0]
    with torch.no_grad():
        logits = algorithm.predict(x)
    assert logits.shape == (6, KINDS[kind][2]) and torch.isfinite(logits).all()



@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_predict_is_pure_and_batch_independent_unless_declared(name):
    algorithm = _build(name, "digits2x8")
    _seed_rngs(0)
    _train(algorithm, "digits2x8", 2)
    algorithm.eval()
    x = _minibatches("digits2x8", 7, (10,))[0][0]
    before = algorithm.state()
    with torch.no_grad():
        whole = algorithm.predict(x)
        parts = torch.cat([algorithm.predict(x[:3]), algorithm.predict(x[3:])])
    after = algorithm.state()
    for key, value in before["model"].items():
        assert torch.equal(value, after["model"][key]), key
    assert before["update_count"] == after["update_count"]
    if not type(algorithm).EVAL_BATCH_DEPENDENT:
        torch.testing.assert_close(whole, parts, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_state_round_trip_gives_identical_next_updates(name):
    algorithm = _build(name, "digits2x8")
    _seed_rngs(1)
    _train(algorithm, "digits2x8", 2)
    saved = algorithm.state()
    _seed_rngs(2)
    want = _train(algorithm, "digits2x8", 3, first=2)

    restored = _build(name, "digits2x8", seed=5)
    restored.load_state(saved)
    _seed_rngs(2)
    got = _train(restored, "digits2x8", 3, first=2)
    assert got == want
    for (key, value), expected in zip(restored.state_dict().items(),
                                      algorithm.state_dict().values()):
        assert torch.equal(value, expected), key
    for opt_name, opt in algorithm.optimizers.items():
        mine = restored.optimizers[opt_name].state_dict()["state"]
        theirs = opt.state_dict()["state"]
        assert mine.keys() == theirs.keys(), opt_name
        for index in theirs:
            for field, value in theirs[index].items():
                assert torch.equal(mine[index][field], value), (opt_name, index, field)


def test_every_search_space_has_an_implementation():
    from search_spaces import algorithm_names

    assert list(ALGORITHMS) == algorithm_names()
    assert len(ALGORITHMS) == 20  # the 19 of the Fishr paper (Table 3 and IGA) plus SD
