"""MNIST from IDX files in torchvision's layout: ``<data_dir>/MNIST/raw/<name>[.gz]``.

DomainBed joins MNIST's 60,000 training and 10,000 test images into one pool of 70,000 before
building ColoredMNIST / RotatedMNIST. Nothing is downloaded here (``python -m
fishr_tune.download ColoredMNIST --data-dir D`` does that); a missing or damaged file is a
one-line :class:`UserError` naming the path.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

from fishr_tune.datasets.locations import mnist_fix, mnist_folder
from fishr_tune.datasets.tensors import TensorPool
from fishr_tune.errors import UserError

# (images, labels) file stems, train first: DomainBed concatenates train then test.
MNIST_PARTS = (
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)
MNIST_FILES = tuple(name for part in MNIST_PARTS for name in part)
_UBYTE = 0x08  # IDX type code of unsigned bytes, the only type MNIST uses


def find_idx_file(raw_dir: str, stem: str) -> str | None:
    """The plain file if present, else its ``.gz`` version, else None."""
    for candidate in (stem, stem + ".gz"):
        path = os.path.join(raw_dir, candidate)
        if os.path.isfile(path):
            return path
    return None


def read_idx(path: str, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (optionally gzipped) with ``ndim`` dimensions.

    Raises:
        UserError: unreadable file, wrong header or wrong size (names the file).
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"cannot read MNIST file {path} ({exc}): delete it and download it "
                        "again") from exc
    if len(data) < 4 + 4 * ndim or data[:2] != b"\x00\x00" or data[2] != _UBYTE \
            or data[3] != ndim:
        raise UserError(f"{path} is not an MNIST IDX file with {ndim} dimension(s): delete it "
                        "and download it again")
    shape = tuple(int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise UserError(f"{path} holds {len(body)} bytes of data but its header says "
                        f"{shape}: the file is truncated, download it again")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def load_mnist_pool(data_dir: str | None, dataset_name: str = "ColoredMNIST") -> TensorPool:
    """Read MNIST's train and test IDX files and join them (70,000 images for real MNIST).

    Args:
        data_dir: the folder that holds ``MNIST/raw``.
        dataset_name: used in error messages (the download command to suggest).

    Raises:
        UserError: no data dir, a missing file (names the exact path), or a damaged file.
    """
    raw_dir = mnist_folder(dataset_name, data_dir)
    images, labels = [], []
    for image_stem, label_stem in MNIST_PARTS:
        paths = []
        for stem in (image_stem, label_stem):
            path = find_idx_file(raw_dir, stem)
            if path is None:
                raise UserError(f"missing MNIST file {os.path.join(raw_dir, stem)} (or .gz): "
                                f"{mnist_fix(dataset_name, data_dir)}")
            paths.append(path)
        part_images, part_labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
        if len(part_images) != len(part_labels):
            raise UserError(f"{paths[0]} has {len(part_images)} images but {paths[1]} has "
                            f"{len(part_labels)} labels: download both files again")
        images.append(part_images)
        labels.append(part_labels)
    return TensorPool(images=np.concatenate(images), labels=np.concatenate(labels).astype(np.int64),
                      max_value=255)
