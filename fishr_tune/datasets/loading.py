"""The two-stage dataset API the trial loop uses: ``load_raw`` once, ``build_environments`` per job.

``load_raw`` is the heavy, seed-independent part (reading MNIST, listing image files); its
result is picklable; a sweep trial loads it where it runs, once per worker process (reused
actors keep it), so the driver never reads data. ``build_environments`` applies the job seed
(pool permutation, label noise, colours, rotations) or the per-environment image transform,
which is cheap.
"""

from __future__ import annotations

from fishr_tune.datasets.embedded import load_digits_pool
from fishr_tune.datasets.images import ImageEnv, ImagePool, scan_image_folders
from fishr_tune.datasets.mnist import load_mnist_pool
from fishr_tune.datasets.registry import DatasetSpec
from fishr_tune.datasets.tensors import TensorPool, build_tensor_envs
from fishr_tune.datasets.transforms import env_transforms
from fishr_tune.errors import UserError

# Which DomainBed construction rule each tensor dataset uses.
TENSOR_RULES = {
    "ColoredDigits": "colored",
    "ColoredMNIST": "colored",
    "RotatedDigits": "rotated",
    "RotatedMNIST": "rotated",
}


def load_raw(spec: DatasetSpec, data_dir: str | None):
    """Load the seed-independent part of a dataset (picklable).

    Args:
        spec: the dataset (``get_spec``).
        data_dir: the data root (ignored by embedded and ``folder:`` datasets).

    Returns:
        A ``TensorPool`` (embedded: 1,797 sklearn digits; mnist: 70,000 MNIST images) or an
        ``ImagePool`` (per environment the sorted (relative path, class index) list).

    Raises:
        UserError: a missing folder or file (the message names the path and the download
            command), or folders that do not match the spec.
    """
    if spec.kind == "embedded":
        return load_digits_pool()
    if spec.kind == "mnist":
        return load_mnist_pool(data_dir, spec.name)
    if spec.kind == "images":
        return scan_image_folders(spec, data_dir)
    raise ValueError(f"unknown dataset kind {spec.kind!r} for {spec.name}")


def _check_test_envs(spec: DatasetSpec, test_envs) -> None:
    bad = [env for env in test_envs if not 0 <= int(env) < spec.num_environments]
    if bad:
        raise UserError(f"test env {bad[0]} is out of range for {spec.name}: valid envs are "
                        f"0..{spec.num_environments - 1} ({', '.join(spec.environments)})")


def build_environments(spec: DatasetSpec, raw, seed: int, test_envs, hparams: dict) -> list:
    """Build one dataset per environment, in spec order, with DomainBed's semantics.

    Args:
        spec: the dataset.
        raw: what ``load_raw(spec, ...)`` returned.
        seed: the job seed (permutation, label noise and colours of the tensor datasets).
        test_envs: indices of the test environments (they never get augmentation).
        hparams: read for ``data_augmentation`` (default True, DomainBed's default).

    Returns:
        ``TensorEnv`` objects (embedded and MNIST: ``.x`` float32 (N, C, H, W) in [0, 1],
        ``.y`` int64) or ``ImageEnv`` objects (3x224x224 normalised tensors, int labels).
    """
    _check_test_envs(spec, test_envs)
    if spec.kind in ("embedded", "mnist"):
        if not isinstance(raw, TensorPool):
            raise TypeError(f"{spec.name} needs the TensorPool from load_raw, got {type(raw)}")
        envs = build_tensor_envs(raw, TENSOR_RULES[spec.name], seed)
    else:
        if not isinstance(raw, ImagePool):
            raise TypeError(f"{spec.name} needs the ImagePool from load_raw, got {type(raw)}")
        augment = bool(hparams.get("data_augmentation", True))
        transforms = env_transforms(len(raw.samples), test_envs, augment)
        envs = [ImageEnv(raw.root, samples, transform)
                for samples, transform in zip(raw.samples, transforms)]
    if len(envs) != spec.num_environments:
        raise ValueError(f"{spec.name}: built {len(envs)} environments, the spec lists "
                         f"{spec.num_environments}")
    return envs
