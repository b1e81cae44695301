"""ColoredMNIST / RotatedMNIST from tiny IDX files in torchvision's layout."""

import gzip
import os

import numpy as np
import pytest
import torch
from torchvision import transforms
from torchvision.transforms.functional import InterpolationMode, rotate

from fishr_tune.datasets import TensorEnv, build_environments, get_spec, load_raw
from fishr_tune.errors import UserError

N_TRAIN, N_TEST = 12, 6


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(data_dir, gz=False, seed=0):
    """Write 12 train + 6 test random 28x28 digits; returns (images, labels) in load order."""
    rng = np.random.RandomState(seed)
    raw = os.path.join(data_dir, "MNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    parts = []
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labels = rng.randint(0, 10, size=n).astype(np.uint8)
        for stem, array in ((f"{prefix}-images-idx3-ubyte", images),
                            (f"{prefix}-labels-idx1-ubyte", labels)):
            data = idx_bytes(array)
            if gz:
                with gzip.open(os.path.join(raw, stem + ".gz"), "wb") as handle:
                    handle.write(data)
            else:
                with open(os.path.join(raw, stem), "wb") as handle:
                    handle.write(data)
        parts.append((images, labels))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_pool_joins_train_then_test(tmp_path, gz):
    images, labels = write_mnist(tmp_path, gz=gz)
    pool = load_raw(get_spec("ColoredMNIST"), str(tmp_path))
    assert pool.max_value == 255
    assert np.array_equal(pool.images, images) and np.array_equal(pool.labels, labels)
    assert pool.labels.dtype == np.int64


def test_colored_mnist_envs(tmp_path):
    images, labels = write_mnist(tmp_path)
    spec = get_spec("cmnist")
    envs = build_environments(spec, load_raw(spec, str(tmp_path)), 5, [2], {})
    assert [len(env) for env in envs] == [6, 6, 6]
    order = torch.randperm(N_TRAIN + N_TEST, generator=torch.Generator().manual_seed(5))
    for i, env in enumerate(envs):
        assert isinstance(env, TensorEnv) and tuple(env.x.shape[1:]) == (2, 28, 28)
        assert set(env.y.tolist()) <= {0, 1}
        kept = env.x.sum(dim=(2, 3)).argmax(dim=1)
        expected = torch.from_numpy(images)[order][i::3].float() / 255
        assert torch.equal(env.x[torch.arange(6), kept], expected)


def test_rotated_mnist_matches_domainbed_pil_rotation(tmp_path):
    images, labels = write_mnist(tmp_path)
    spec = get_spec("RotatedMNIST")
    envs = build_environments(spec, load_raw(spec, str(tmp_path)), 9, [0], {})
    assert [len(env) for env in envs] == [3] * 6
    order = torch.randperm(N_TRAIN + N_TEST, generator=torch.Generator().manual_seed(9))
    shuffled, digits = torch.from_numpy(images)[order], torch.from_numpy(labels)[order]
    for i, angle in enumerate((0, 15, 30, 45, 60, 75)):
        env = envs[i]
        assert tuple(env.x.shape[1:]) == (1, 28, 28)
        assert torch.equal(env.y, digits[i::6].long())
        # DomainBed: ToPILImage -> rotate (bilinear, fill 0) -> ToTensor, image by image.
        for k, image in enumerate(shuffled[i::6]):
            pil = transforms.ToPILImage()(image)
            reference = transforms.ToTensor()(
                rotate(pil, angle, interpolation=InterpolationMode.BILINEAR, fill=(0,)))
            assert torch.equal(env.x[k], reference), (i, k)


def test_missing_file_names_exact_path(tmp_path):
    write_mnist(tmp_path)
    missing = os.path.join(tmp_path, "MNIST", "raw", "t10k-labels-idx1-ubyte")
    os.remove(missing)
    with pytest.raises(UserError) as info:
        load_raw(get_spec("ColoredMNIST"), str(tmp_path))
    message = str(info.value)
    assert missing in message and "python -m fishr_tune.download ColoredMNIST" in message
    assert "\n" not in message


def test_missing_dir_and_no_data_dir(tmp_path):
    """The loader's words are the sweep driver's (one check, datasets.locations.mnist_folder)."""
    from fishr_tune.datasets.locations import mnist_folder

    nowhere = str(tmp_path / "nowhere")
    messages = {}
    for data_dir in (nowhere, None):
        with pytest.raises(UserError) as loader:
            load_raw(get_spec("RotatedMNIST"), data_dir)
        with pytest.raises(UserError) as driver:
            mnist_folder("RotatedMNIST", data_dir)
        assert str(loader.value) == str(driver.value)
        assert "python -m fishr_tune.download RotatedMNIST" in str(loader.value)
        messages[data_dir] = str(loader.value)
    needs = "RotatedMNIST needs --data-dir D with MNIST IDX files in D/MNIST/raw"
    assert messages[nowhere].startswith(
        f"{needs} (missing: {os.path.join(nowhere, 'MNIST', 'raw')}): get them with ")
    assert messages[None].startswith(f"{needs}: get them with ")


def test_damaged_files_name_the_file(tmp_path):
    write_mnist(tmp_path)
    path = os.path.join(tmp_path, "MNIST", "raw", "train-images-idx3-ubyte")
    with open(path, "r+b") as handle:
        handle.truncate(1000)  # header intact, pixels cut short
    with pytest.raises(UserError, match="truncated") as info:
        load_raw(get_spec("ColoredMNIST"), str(tmp_path))
    assert path in str(info.value)
    with open(path, "wb") as handle:
        handle.write(b"not an idx file at all")
    with pytest.raises(UserError, match="not an MNIST IDX file"):
        load_raw(get_spec("ColoredMNIST"), str(tmp_path))


def test_count_mismatch_between_images_and_labels(tmp_path):
    write_mnist(tmp_path)
    path = os.path.join(tmp_path, "MNIST", "raw", "t10k-labels-idx1-ubyte")
    with open(path, "wb") as handle:
        handle.write(idx_bytes(np.zeros(5, dtype=np.uint8)))
    with pytest.raises(UserError, match="6 images but"):
        load_raw(get_spec("ColoredMNIST"), str(tmp_path))

