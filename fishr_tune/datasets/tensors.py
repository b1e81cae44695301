"""Tensor-backed environments and DomainBed's ColoredMNIST / RotatedMNIST construction rules.

The same rules build the MNIST datasets (28x28, pixels 0..255) and the embedded scikit-learn
digits (8x8, pixels 0..16). Random draws come from one local ``torch.Generator`` seeded with the
job seed, in DomainBed's order (the pool permutation, then per environment the label-noise draw
and the colour-flip draw). DomainBed draws from the global torch RNG right after
``torch.manual_seed(seed)``, which yields the same stream, so ColoredMNIST environments are
identical to DomainBed's for the same job seed; the local generator only keeps the trial's
global RNG untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset

LABEL_NOISE = 0.25
COLOUR_FLIP = (0.1, 0.2, 0.9)  # +90%, +80%, -90% (the code's 0.2, not the paper's 0.3: DB#57)
ANGLES = (0, 15, 30, 45, 60, 75)


@dataclass(frozen=True)
class TensorPool:
    """The seed-independent pool of a tensor dataset (picklable, shared through Ray).

    Attributes:
        images: uint8 array (N, H, W) of raw pixel values.
        labels: int64 array (N,) of digit classes 0..9.
        max_value: the largest possible pixel value (255 for MNIST, 16 for the sklearn digits);
            inputs are ``pixels / max_value`` in [0, 1].
    """

    images: np.ndarray
    labels: np.ndarray
    max_value: int


class TensorEnv(Dataset):
    """One environment held as tensors, so the trial loop can slice minibatches directly.

    Attributes:
        x: float32 tensor (N, C, H, W) with values in [0, 1].
        y: int64 tensor (N,).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        if len(x) != len(y):
            raise ValueError(f"TensorEnv needs as many inputs as labels ({len(x)} != {len(y)})")
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index):
        return self.x[index], self.y[index]

    def subset(self, keys) -> "TensorEnv":
        """A new TensorEnv of the rows ``keys``, in that order (copies, so no view pins memory)."""
        index = torch.as_tensor(np.asarray(keys, dtype=np.int64))
        return TensorEnv(self.x[index], self.y[index])


def _bernoulli(p: float, n: int, generator: torch.Generator) -> torch.Tensor:
    # DomainBed's torch_bernoulli_: uniform draws compared with p, as floats 0/1.
    return (torch.rand(n, generator=generator) < p).float()


def colour_env(images: torch.Tensor, digits: torch.Tensor, flip: float, max_value: int,
               generator: torch.Generator) -> TensorEnv:
    """ColoredMNIST's rule for one environment.

    Label = (digit < 5) XOR Bernoulli(0.25); colour = label XOR Bernoulli(flip); the image is
    copied into 2 channels and the channel that is not the colour is zeroed.

    Args:
        images: uint8 (n, H, W).
        digits: int64 (n,).
        flip: the environment's colour-flip probability.
        max_value: pixel scale (inputs become ``pixels / max_value``).
        generator: the job's generator (two draws of n uniforms, noise first).
    """
    n = len(digits)
    labels = (digits < 5).float()
    labels = (labels - _bernoulli(LABEL_NOISE, n, generator)).abs()  # XOR on 0/1 floats
    colours = (labels - _bernoulli(flip, n, generator)).abs()
    x = torch.stack([images, images], dim=1).float()
    x[torch.arange(n), (1 - colours).long()] = 0.0
    return TensorEnv(x.div_(float(max_value)), labels.long())


def _rotate_one(image: np.ndarray, angle: float, max_value: int) -> np.ndarray:
    if max_value == 255:
        # MNIST: DomainBed rotates the 8-bit PIL image and ToTensor divides by 255; keeping the
        # 8-bit image reproduces its rounding exactly.
        pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))  # mode L
    else:
        # Other scales (the 0..16 digits) cannot be stored in 8 bits without rounding, so rotate
        # a 32-bit float image: same bilinear kernel, no quantisation.
        pil = Image.fromarray(image.astype(np.float32))  # mode F
    rotated = TF.rotate(pil, angle, interpolation=TF.InterpolationMode.BILINEAR, fill=0)
    return np.asarray(rotated, dtype=np.float32)


def rotate_env(images: torch.Tensor, digits: torch.Tensor, angle: float,
               max_value: int) -> TensorEnv:
    """RotatedMNIST's rule: rotate each image by ``angle`` degrees (bilinear, fill 0).

    Returns inputs of shape (n, 1, H, W) in [0, 1] and the digit as label. Angle 0 returns
    the images unchanged (PIL's rotate is the identity there too).
    """
    array = images.numpy()
    if angle % 360 == 0:
        rotated = array.astype(np.float32)
    else:
        rotated = np.zeros(array.shape, dtype=np.float32)
        for k, image in enumerate(array):
            rotated[k] = _rotate_one(image, angle, max_value)
    x = torch.from_numpy(rotated).unsqueeze(1).div_(float(max_value))
    return TensorEnv(x, digits.clone().long())


def build_tensor_envs(pool: TensorPool, rule: str, seed: int) -> list[TensorEnv]:
    """DomainBed's MultipleEnvironmentMNIST: permute the pool, env i takes positions i, i+E, ...

    Args:
        pool: the raw images and digits.
        rule: ``colored`` (3 envs) or ``rotated`` (6 envs).
        seed: the job seed (one local generator drives every draw).
    """
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(pool.labels), generator=generator).numpy()
    # Index in numpy: Ray hands the pool over as read-only arrays, and the indexed copies are
    # writable, so torch.from_numpy neither warns nor shares memory with the shared pool.
    images = torch.from_numpy(pool.images[order])
    digits = torch.from_numpy(pool.labels[order].astype(np.int64))
    params = COLOUR_FLIP if rule == "colored" else ANGLES
    envs = []
    for i, param in enumerate(params):
        env_images, env_digits = images[i::len(params)], digits[i::len(params)]
        if rule == "colored":
            envs.append(colour_env(env_images, env_digits, param, pool.max_value, generator))
        else:
            envs.append(rotate_env(env_images, env_digits, param, pool.max_value))
    return envs
