"""Featurizers by input shape, the classifier, and ResNet weights from local files only."""

import pytest
import torch
import torchvision
from torch import nn

from fishr_tune.errors import UserError
from fishr_tune.networks import Classifier, Featurizer

HPARAMS = {"resnet18": True, "resnet_dropout": 0.5}


def _convs(net):
    return [(m.in_channels, m.out_channels, m.kernel_size, m.stride[0])
            for m in net.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("channels", [1, 2])
def test_digits_cnn(channels):
    net = Featurizer((channels, 8, 8), {})
    assert net.n_outputs == 64
    assert net(torch.randn(5, channels, 8, 8)).shape == (5, 64)


def test_mnist_cnn_matches_domainbed_layers():
    net = Featurizer((2, 28, 28), {})
    assert net.n_outputs == 128
    assert _convs(net) == [(2, 64, (3, 3), 1), (64, 128, (3, 3), 2), (128, 128, (3, 3), 1),
                           (128, 128, (3, 3), 1)]
    norms = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    assert [(m.num_groups, m.num_channels) for m in norms] == [(8, 64), (8, 128), (8, 128),
                                                               (8, 128)]
    # conv -> ReLU -> GroupNorm, as DomainBed's MNIST_CNN
    kinds = [type(m) for m in net.layers]
    assert kinds[:3] == [nn.Conv2d, nn.ReLU, nn.GroupNorm]
    assert sum(p.numel() for p in net.parameters()) == 371_136  # DomainBed's MNIST_CNN, 2 channels
    assert net(torch.randn(3, 2, 28, 28)).shape == (3, 128)


def test_unsupported_shape():
    with pytest.raises(UserError, match="no featurizer for input shape"):
        Featurizer((3, 32, 32), {})


def test_classifier():
    assert isinstance(Classifier(128, 10), nn.Linear)
    mlp = Classifier(128, 10, nonlinear=True)
    linears = [(m.in_features, m.out_features) for m in mlp if isinstance(m, nn.Linear)]
    assert linears == [(128, 64), (64, 32), (32, 10)]
    assert mlp(torch.randn(4, 128)).shape == (4, 10)


def test_resnet18_random_init_bn_frozen():
    net = Featurizer((3, 224, 224), HPARAMS, weights="none")
    assert net.n_outputs == 512
    net.train()
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    assert net.dropout.training and net.dropout.p == 0.5
    before = norms[0].running_mean.clone()
    out = net(torch.randn(2, 3, 224, 224))
    assert out.shape == (2, 512)
    assert torch.equal(norms[0].running_mean, before)  # running statistics not updated


def test_resnet50_random_init():
    net = Featurizer((3, 224, 224), {}, weights="NONE")
    assert net.n_outputs == 2048
    assert isinstance(net.network.fc, nn.Identity)
    assert net.eval()(torch.randn(1, 3, 224, 224)).shape == (1, 2048)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # non-default BN statistics, to see that buffers load too
        reference.bn1.running_mean.uniform_()
    path = tmp_path_factory.mktemp("weights") / "resnet18-test.pth"
    torch.save(reference.state_dict(), path)
    return path, reference.state_dict()


def _assert_loaded(net, state):
    loaded = net.network.state_dict()
    for key in ("conv1.weight", "bn1.running_mean", "layer4.1.conv2.weight"):
        assert torch.equal(loaded[key], state[key]), key


def test_resnet_weights_from_path(resnet18_file):
    path, state = resnet18_file
    net = Featurizer((3, 224, 224), HPARAMS, weights=str(path))
    _assert_loaded(net, state)
    assert net.train()(torch.randn(2, 3, 224, 224)).shape == (2, 512)


def test_resnet_weights_from_hub_cache(resnet18_file, tmp_path, monkeypatch):
    path, state = resnet18_file
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "resnet18-abc123.pth").write_bytes(path.read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    _assert_loaded(Featurizer((3, 224, 224), HPARAMS), state)


def test_resnet_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(UserError, match="resnet50-0676ba61.pth.*--no-pretrained"):
        Featurizer((3, 224, 224), {})
    with pytest.raises(UserError, match="not found.*--no-pretrained"):
        Featurizer((3, 224, 224), {}, weights=str(tmp_path / "missing.pth"))


def test_resnet_wrong_weights_file(resnet18_file):
    with pytest.raises(UserError, match="does not hold torchvision resnet50 weights"):
        Featurizer((3, 224, 224), {}, weights=str(resnet18_file[0]))


def test_resnet_other_channel_count(resnet18_file):
    path, state = resnet18_file
    net = Featurizer((2, 224, 224), HPARAMS, weights=str(path))
    torch.testing.assert_close(net.network.conv1.weight, state["conv1.weight"][:, :2])
    assert net.eval()(torch.randn(1, 2, 224, 224)).shape == (1, 512)
