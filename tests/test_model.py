import pytest
import torch
from torch import nn

from mnist_mlp.model import MLP


def test_layers_and_shapes():
    net = MLP(532, 195, dropout=0.477)
    hidden1, hidden2, output = net.linear_layers()
    assert tuple(hidden1.weight.shape) == (532, 784)
    assert tuple(hidden2.weight.shape) == (195, 532)
    assert tuple(output.weight.shape) == (10, 195)
    kinds = [nn.Linear, nn.LeakyReLU, nn.Dropout] * 2 + [nn.Linear]
    assert all(isinstance(layer, kind) for layer, kind in zip(net.layers, kinds, strict=True))
    assert net.layers.drop1.p == net.layers.drop2.p == 0.477
    assert sum(p.numel() for p in net.parameters()) == 784 * 532 + 532 + 532 * 195 + 195 + 1960


def test_forward_returns_logits_for_flat_or_square_images():
    torch.manual_seed(0)
    net = MLP(60, 50).eval()
    images = torch.rand(5, 28, 28)
    logits = net(images)
    assert tuple(logits.shape) == (5, 10)
    assert torch.equal(logits, net(images.reshape(5, 784)))
    # no softmax layer: CrossEntropyLoss gets raw scores
    assert not torch.allclose(logits.sum(dim=1), torch.ones(5))


def test_dropout_is_active_only_in_training_mode():
    torch.manual_seed(0)
    net = MLP(100, 80, dropout=0.5)
    x = torch.rand(4, 784)
    assert not torch.equal(net.train()(x), net.train()(x))
    assert torch.equal(net.eval()(x), net.eval()(x))


def test_dropout_zeroes_a_share_p_and_keeps_the_mean():
    torch.manual_seed(0)
    net = MLP(100, 80, dropout=0.3).train()
    x = torch.ones(2000, 1000)
    dropped = net.layers.drop1(x)
    assert (dropped == 0).float().mean().item() == pytest.approx(0.3, abs=0.005)
    assert dropped.mean().item() == pytest.approx(1.0, abs=0.01)  # scaled by 1 / (1 - p)
    assert torch.equal(net.eval().layers.drop1(x), x)
