"""Networks: a featurizer chosen by input shape, and the classifier on top of it.

``Featurizer(input_shape, hparams, weights)`` follows DomainBed's rule (the network depends on the
input shape only); ``Classifier`` is DomainBed's linear layer or 3-layer MLP; ``MLP`` (DANN's
discriminator) and ``context_net`` (ARM) are the other networks DomainBed's algorithms use.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fishr_tune.errors import UserError
from fishr_tune.networks.context import context_net
from fishr_tune.networks.convnets import ConvGroupNormNet, digits_cnn, mnist_cnn
from fishr_tune.networks.mlp import MLP
from fishr_tune.networks.resnet import ResNetFeaturizer, find_weights

__all__ = ["MLP", "Classifier", "ConvGroupNormNet", "Featurizer", "ResNetFeaturizer",
           "context_net", "find_weights"]


def Featurizer(input_shape: Sequence[int], hparams: dict,  # noqa: N802 (DomainBed's name)
               weights: str | None = None) -> nn.Module:
    """Build the featurizer for inputs of shape (C, H, W).

    Args:
        input_shape: (C, 8, 8) -> small digits CNN (64 features); (C, 28, 28) -> DomainBed's
            MNIST CNN (128); (C, 224, 224) -> ResNet-50, or ResNet-18 if ``hparams["resnet18"]``
            (2048 / 512), BatchNorm frozen, dropout ``hparams["resnet_dropout"]``.
        hparams: the trial's hparams (only the ResNet reads any).
        weights: ImageNet weights for the ResNet: a state-dict path, ``"none"`` for random
            initialisation, or None for torch's hub cache. Ignored by the small CNNs.

    Returns:
        An ``nn.Module`` mapping (N, C, H, W) to (N, n_outputs), with attribute ``n_outputs``.

    Raises:
        UserError: unsupported input shape, or missing / wrong weights file.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3 and shape[1:] == (8, 8):
        return digits_cnn(shape[0])
    if len(shape) == 3 and shape[1:] == (28, 28):
        return mnist_cnn(shape[0])
    if len(shape) == 3 and shape[1:] == (224, 224):
        return ResNetFeaturizer(shape, hparams, weights)
    raise UserError(f"no featurizer for input shape {shape}: use (C, 8, 8), (C, 28, 28) or "
                    f"(C, 224, 224) inputs")


def Classifier(in_features: int, out_features: int,  # noqa: N802 (DomainBed's name)
               nonlinear: bool = False) -> nn.Module:
    """DomainBed's classifier: ``nn.Linear``, or with ``nonlinear`` the MLP
    in -> in/2 -> in/4 -> out with ReLUs in between."""
    if not nonlinear:
        return nn.Linear(in_features, out_features)
    return nn.Sequential(
        nn.Linear(in_features, in_features // 2), nn.ReLU(),
        nn.Linear(in_features // 2, in_features // 4), nn.ReLU(),
        nn.Linear(in_features // 4, out_features))
