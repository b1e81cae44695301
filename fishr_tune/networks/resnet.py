"""torchvision ResNet-18/50 featurizer with frozen BatchNorm, and local ImageNet weights.

Nothing is ever downloaded: ImageNet weights come from a file the user points at, or from torch's
hub cache (``torch.hub.get_dir()/checkpoints``), where torchvision itself would have stored them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from fishr_tune.errors import UserError

# torchvision's IMAGENET1K_V1 files: what DomainBed's ``pretrained=True`` loaded (Fishr-era tables).
PREFERRED_FILES = {"resnet18": "resnet18-f37072fd.pth", "resnet50": "resnet50-0676ba61.pth"}


def find_weights(arch: str, weights: str | None) -> Path | None:
    """Resolve which ImageNet weights file to load for ``arch``.

    Args:
        arch: ``"resnet18"`` or ``"resnet50"``.
        weights: a path to a state-dict file; ``"none"`` for random initialisation; None to look
            in torch's hub cache for ``<arch>-*.pth`` (the IMAGENET1K_V1 file first if several).

    Returns:
        The file to load, or None for no pretrained weights.

    Raises:
        UserError: the file (or any cached file) is missing.
    """
    if weights is not None and str(weights).lower() == "none":
        return None
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UserError(f"weights file {path} not found: pass an existing {arch} state-dict "
                            f"file to --weights, or pass --no-pretrained")
        return path
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    candidates = sorted(cache.glob(f"{arch}-*.pth"))
    if not candidates:
        raise UserError(f"no ImageNet weights for {arch} in {cache}: put torchvision's "
                        f"{PREFERRED_FILES[arch]} there, pass --weights PATH, or pass "
                        f"--no-pretrained")
    preferred = [p for p in candidates if p.name == PREFERRED_FILES[arch]]
    return (preferred or candidates)[0]


def _load_into(network: nn.Module, arch: str, path: Path) -> None:
    """Load a state dict from ``path`` into ``network`` strictly, as a one-line UserError."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    except Exception as exc:  # unpickling and key/shape mismatches: both are a wrong file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} does not hold torchvision {arch} weights ({reason}): pass the "
                        f"matching file to --weights, or pass --no-pretrained") from exc


class ResNetFeaturizer(nn.Module):
    """ResNet-50 (or ResNet-18) without its fc layer, BatchNorm frozen, dropout on the features.

    As in the DomainBed code behind the Fishr paper: every BatchNorm stays in eval mode (running
    statistics frozen, affine parameters still trained), also after ``.train()``, and dropout of
    rate ``resnet_dropout`` is applied to the pooled features.

    Args:
        input_shape: (C, 224, 224); for C != 3 the first convolution is rebuilt for C channels,
            copying the RGB filters cyclically (DomainBed's rule).
        hparams: reads ``resnet18`` (bool, default False) and ``resnet_dropout`` (default 0).
        weights: see :func:`find_weights`.

    Attributes:
        n_outputs: 2048 (ResNet-50) or 512 (ResNet-18).
    """

    def __init__(self, input_shape: tuple[int, ...], hparams: dict, weights: str | None = None):
        super().__init__()
        arch = "resnet18" if hparams.get("resnet18", False) else "resnet50"
        path = find_weights(arch, weights)  # first: a missing file fails before any work
        network = getattr(torchvision.models, arch)(weights=None)  # weights=None: no download
        if path is not None:
            _load_into(network, arch, path)
        self.n_outputs = network.fc.in_features
        network.fc = nn.Identity()
        channels = int(input_shape[0])
        if channels != 3:
            rgb = network.conv1.weight.data
            network.conv1 = nn.Conv2d(channels, 64, 7, stride=2, padding=3, bias=False)
            network.conv1.weight.data = rgb[:, [i % 3 for i in range(channels)]].clone()
        self.network = network
        self.dropout = nn.Dropout(float(hparams.get("resnet_dropout", 0.0)))
        self.freeze_bn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images (N, C, 224, 224) to features (N, n_outputs)."""
        return self.dropout(self.network(x))

    def train(self, mode: bool = True) -> ResNetFeaturizer:
        """Switch train/eval mode, but keep every BatchNorm in eval mode."""
        super().train(mode)
        self.freeze_bn()
        return self

    def freeze_bn(self) -> None:
        """Put every BatchNorm layer in eval mode (use and keep the running statistics)."""
        for module in self.network.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
