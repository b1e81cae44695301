"""Embedded datasets (scikit-learn digits) and DomainBed's in/out splits."""

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from fishr_tune.datasets import (TensorEnv, TensorPool, build_environments, get_spec, load_raw,
                                 split_dataset, split_environments)
from fishr_tune.datasets.tensors import rotate_env
from fishr_tune.errors import UserError
from fishr_tune.seeding import seed_hash

N_DIGITS = 1797


@pytest.fixture(scope="module")
def digits_pool():
    return load_raw(get_spec("colored_digits"), None)


def permuted_digits(pool, seed, env, n_envs):
    """The digits env ``env`` holds under DomainBed's rule (seeded permutation, stride E)."""
    order = torch.randperm(len(pool.labels), generator=torch.Generator().manual_seed(seed))
    images = torch.from_numpy(pool.images)[order][env::n_envs]
    return images, torch.from_numpy(pool.labels)[order][env::n_envs]


def colours_of(env):
    """Index of the non-zero channel of each ColoredDigits input."""
    return env.x.sum(dim=(2, 3)).argmax(dim=1)


def test_digits_pool_is_sklearn_digits(digits_pool):
    assert isinstance(digits_pool, TensorPool)
    assert digits_pool.images.shape == (N_DIGITS, 8, 8) and digits_pool.images.dtype == np.uint8
    assert digits_pool.images.max() == 16 and digits_pool.max_value == 16
    assert sorted(set(digits_pool.labels.tolist())) == list(range(10))
    assert pickle.loads(pickle.dumps(digits_pool)).images.tobytes() == \
        digits_pool.images.tobytes()


@pytest.mark.parametrize("name, sizes, shape", [
    ("ColoredDigits", [599, 599, 599], (2, 8, 8)),
    ("rotated_digits", [300, 300, 300, 299, 299, 299], (1, 8, 8)),
])
def test_embedded_env_sizes_shapes_dtypes(digits_pool, name, sizes, shape):
    spec = get_spec(name)
    envs = build_environments(spec, digits_pool, 0, [0], {})
    assert [len(env) for env in envs] == sizes and sum(sizes) == N_DIGITS
    for env in envs:
        assert isinstance(env, TensorEnv)
        assert tuple(env.x.shape[1:]) == shape == spec.input_shape
        assert env.x.dtype == torch.float32 and env.y.dtype == torch.int64
        assert env.x.min() >= 0 and env.x.max() <= 1
        assert env.y.max() < spec.num_classes
    x, y = envs[1][3]
    assert torch.equal(x, envs[1].x[3]) and y == envs[1].y[3]


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_colored_digits_noise_and_colour_rates(digits_pool, seed):
    envs = build_environments(get_spec("ColoredDigits"), digits_pool, seed, [2], {})
    flips = []
    for i, env in enumerate(envs):
        images, digits = permuted_digits(digits_pool, seed, i, 3)
        base = (digits < 5).long()
        flips.append((env.y != base).float())
        # The kept channel is the digit itself, scaled from 0..16 to [0, 1].
        colour = colours_of(env)
        kept = env.x[torch.arange(len(env)), colour]
        assert torch.equal(kept, images.float() / 16)
        assert torch.all(env.x[torch.arange(len(env)), 1 - colour] == 0)
        agreement = (colour == env.y).float().mean().item()
        # P(colour == label) = 1 - e with e = 0.1, 0.2, 0.9; n = 599 gives sd <= 0.017.
        assert abs(agreement - (0.9, 0.8, 0.1)[i]) < 0.06, (i, agreement)
    noise = torch.cat(flips).mean().item()
    assert abs(noise - 0.25) < 0.04, noise  # n = 1797, sd 0.010


def test_colored_digits_equal_domainbed_global_rng_construction(digits_pool):
    """A local generator gives exactly what DomainBed's global-RNG code gives for a job seed."""
    seed = 7
    envs = build_environments(get_spec("ColoredDigits"), digits_pool, seed, [0], {})
    torch.manual_seed(seed)  # DomainBed: seeded globally, then randperm and torch.rand
    order = torch.randperm(N_DIGITS)
    images = torch.from_numpy(digits_pool.images)[order]
    labels = torch.from_numpy(digits_pool.labels)[order]
    for i, e in enumerate((0.1, 0.2, 0.9)):
        im, lab = images[i::3], labels[i::3]
        lab = (lab < 5).float()
        lab = (lab - (torch.rand(len(lab)) < 0.25).float()).abs()
        col = (lab - (torch.rand(len(lab)) < e).float()).abs()
        im = torch.stack([im, im], dim=1)
        im[torch.tensor(range(len(im))), (1 - col).long(), :, :] *= 0
        assert torch.equal(envs[i].x, im.float().div_(16.0))
        assert torch.equal(envs[i].y, lab.long())


def test_same_seed_same_tensors_different_seed_different(digits_pool):
    for name in ("ColoredDigits", "RotatedDigits"):
        spec = get_spec(name)
        a = build_environments(spec, digits_pool, 3, [0], {})
        b = build_environments(spec, digits_pool, 3, [0], {})
        c = build_environments(spec, digits_pool, 4, [0], {})
        assert all(torch.equal(p.x, q.x) and torch.equal(p.y, q.y) for p, q in zip(a, b))
        assert not torch.equal(a[0].y, c[0].y)


def test_build_does_not_touch_global_rng(digits_pool):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    build_environments(get_spec("ColoredDigits"), digits_pool, 5, [0], {})
    assert torch.equal(torch.rand(3), expected)


def test_rotated_digits_env0_unrotated_others_rotated(digits_pool):
    seed = 11
    envs = build_environments(get_spec("RotatedDigits"), digits_pool, seed, [0], {})
    for i, env in enumerate(envs):
        images, digits = permuted_digits(digits_pool, seed, i, 6)
        assert torch.equal(env.y, digits)
        unrotated = images.float().unsqueeze(1) / 16
        if i == 0:
            assert torch.equal(env.x, unrotated)
        else:
            assert (env.x - unrotated).abs().mean() > 0.05, i
    # The larger the angle, the further from the upright digit.
    diffs = [(envs[i].x - permuted_digits(digits_pool, seed, i, 6)[0].float().unsqueeze(1) / 16)
             .abs().mean().item() for i in (1, 5)]
    assert diffs[0] < diffs[1]


@pytest.mark.parametrize("max_value", [16, 255])
def test_rotation_direction_and_fill(max_value):
    # A horizontal bar through the centre of a 9x9 image turns counter-clockwise (PIL's
    # convention, as torchvision's rotate): at 90 degrees it becomes a vertical bar.
    image = torch.zeros(1, 9, 9, dtype=torch.uint8)
    image[0, 4, :] = max_value
    env = rotate_env(image, torch.tensor([3]), 90.0, max_value)
    x = env.x[0, 0]
    assert torch.allclose(x[:, 4], torch.ones(9), atol=1e-5)
    assert x[4, 0] == 0 and x[0, 0] == 0  # filled with 0 where nothing rotates in
    env45 = rotate_env(image, torch.tensor([3]), 45.0, max_value)
    assert env45.x[0, 0, 4, 4] > 0.99 and env45.x[0, 0, 4, 0] < 0.1
    assert env.y.tolist() == [3]


def test_test_env_out_of_range(digits_pool):
    with pytest.raises(UserError, match="out of range"):
        build_environments(get_spec("ColoredDigits"), digits_pool, 0, [3], {})


# ---- splits -----------------------------------------------------------------------------------

def indexed_env(n):
    """A TensorEnv whose input is the row index, to track rows through splits."""
    return TensorEnv(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1), torch.arange(n))


def test_split_sizes_disjoint_and_domainbed_keys():
    envs = [indexed_env(599), indexed_env(300), indexed_env(7)]
    splits = split_environments(envs, 0.2, trial_seed=3)
    for i, ((split_in, split_out), env) in enumerate(zip(splits, envs)):
        n = len(env)
        assert isinstance(split_in, TensorEnv) and isinstance(split_out, TensorEnv)
        assert len(split_out) == int(n * 0.2) and len(split_in) == n - int(n * 0.2)
        rows_in, rows_out = split_in.y.tolist(), split_out.y.tolist()
        assert not set(rows_in) & set(rows_out)
        assert sorted(rows_in + rows_out) == list(range(n))
        assert torch.equal(split_in.x.view(-1).long(), split_in.y)
        # DomainBed's split_dataset: shuffle list(range(n)); first int(n * holdout) are out.
        keys = list(range(n))
        np.random.RandomState(seed_hash(3, i)).shuffle(keys)
        assert rows_out == keys[:int(n * 0.2)] and rows_in == keys[int(n * 0.2):]
    assert [len(s[1]) for s in splits] == [119, 60, 1]


def test_split_deterministic_and_trial_seed_dependent():
    envs = [indexed_env(100)]
    a = split_environments(envs, 0.2, 0)[0][1].y
    b = split_environments(envs, 0.2, 0)[0][1].y
    c = split_environments(envs, 0.2, 1)[0][1].y
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_bad_holdout(fraction):
    with pytest.raises(UserError, match="holdout-fraction"):
        split_environments([indexed_env(10)], fraction, 0)


def test_split_of_plain_dataset_is_subset():
    dataset = TensorDataset(torch.arange(10))
    first, rest = split_dataset(dataset, 3, seed=5)
    assert isinstance(first, Subset) and len(first) == 3 and len(rest) == 7
    assert sorted([int(first[k][0]) for k in range(3)] + [int(rest[k][0]) for k in range(7)]) \
        == list(range(10))


def test_tensor_env_pickles_and_validates():
    env = indexed_env(5)
    clone = pickle.loads(pickle.dumps(env))
    assert torch.equal(clone.x, env.x) and torch.equal(clone.y, env.y)
    with pytest.raises(ValueError):
        TensorEnv(torch.zeros(3, 1, 1, 1), torch.zeros(2, dtype=torch.long))


def test_read_only_pool_as_ray_shares_it(digits_pool, recwarn):
    images, labels = digits_pool.images.copy(), digits_pool.labels.copy()
    images.flags.writeable = labels.flags.writeable = False
    pool = TensorPool(images=images, labels=labels, max_value=16)
    envs = build_environments(get_spec("ColoredDigits"), pool, 2, [0], {})
    expected = build_environments(get_spec("ColoredDigits"), digits_pool, 2, [0], {})
    assert all(torch.equal(a.x, b.x) for a, b in zip(envs, expected))
    assert not [w for w in recwarn if "not writable" in str(w.message)]
