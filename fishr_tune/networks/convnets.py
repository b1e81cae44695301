"""Small convolutional featurizers: the 8x8 digits CNN and DomainBed's MNIST CNN.

Both are the same pattern, DomainBed's MNIST recipe: 3x3 convolutions, each followed by ReLU and
then GroupNorm(8), one stride-2 layer, and a global average pool. Only the widths differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ConvGroupNormNet(nn.Module):
    """3x3 conv -> ReLU -> GroupNorm(8) blocks, then a global average pool.

    GroupNorm rather than BatchNorm: it normalises each sample on its own, so a sample's output,
    and hence its gradient, does not depend on the rest of the batch. Fishr's per-sample gradient
    statistics assume exactly that independence.

    Args:
        in_channels: channels of the input images.
        widths: output channels of each convolution; the last is ``n_outputs``.
        strides: stride of each convolution (same length as ``widths``).

    Attributes:
        n_outputs: size of the feature vector (``widths[-1]``).
    """

    def __init__(self, in_channels: int, widths: Sequence[int], strides: Sequence[int]):
        super().__init__()
        if len(widths) != len(strides):
            raise ValueError("widths and strides must have the same length")
        layers: list[nn.Module] = []
        previous = in_channels
        for width, stride in zip(widths, strides):
            layers += [nn.Conv2d(previous, width, 3, stride=stride, padding=1), nn.ReLU(),
                       nn.GroupNorm(8, width)]
            previous = width
        self.layers = nn.Sequential(*layers)
        self.n_outputs = int(widths[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images (N, C, H, W) to features (N, n_outputs)."""
        return self.layers(x).mean(dim=(2, 3))


def mnist_cnn(in_channels: int) -> ConvGroupNormNet:
    """DomainBed's ``MNIST_CNN`` for (C, 28, 28) inputs: widths 64, 128, 128, 128, the second
    convolution with stride 2 (28 -> 14), 128 features. Same layer order as DomainBed
    (conv, ReLU, GroupNorm(8)); only the parameter names differ."""
    return ConvGroupNormNet(in_channels, (64, 128, 128, 128), (1, 2, 1, 1))


def digits_cnn(in_channels: int) -> ConvGroupNormNet:
    """A small CNN for (C, 8, 8) inputs (the embedded scikit-learn digits), 64 features.

    Why this shape: three 3x3 convolutions with the middle one at stride 2 (8 -> 4) give a
    receptive field of 9 pixels, so every position sees the whole 8x8 image before the global
    pool; a fourth layer as in the MNIST CNN would add cost and no reach. Widths 32, 64, 64 (about
    56k parameters, against 370k for the MNIST CNN) suffice for 2- or 10-class 8x8 digits, keep a
    step cheap on CPU sweeps, and keep Fishr's classifier small (|w| = 65 * classes).
    """
    return ConvGroupNormNet(in_channels, (32, 64, 64), (1, 2, 1))
