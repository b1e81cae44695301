"""ARM's context network: a same-size convolutional map from an image to one context channel."""

from __future__ import annotations

from torch import nn


def context_net(in_channels: int) -> nn.Sequential:
    """DomainBed's ``ContextNet``: three 5x5 convolutions with padding 2 (H and W unchanged),
    64 -> 64 -> 1 channels, BatchNorm + ReLU after the first two. Maps (N, C, H, W) to
    (N, 1, H, W)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 1, 5, padding=2))
