"""Every model: one forward and backward pass on CPU at its smallest input, right output shape;
backbones expose their last feature map; config rebuilds the same architecture."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.models import count, create, info, names
from cnnlab.nn.params import count_params

# Big dense tops or deep stacks: seconds each on a 2-core CPU, so marked slow.
HEAVY = {
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "resnet101", "resnet152", "densenet161", "densenet169", "densenet201", "bonet", "resnet110", "plain110",
}  # fmt: skip


# Building the model three times is what costs here: mid-size nets are slow too.
HEAVY_BACKBONES = HEAVY | {"resnet34", "resnet50", "googlenet", "densenet121"}


def _params(all_names: list[str], heavy: set[str] = HEAVY) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in heavy else n for n in all_names]


@pytest.mark.parametrize("name", _params(names()))
def test_forward_backward_at_smallest_input(name: str) -> None:
    entry = info(name)
    size, channels = entry.min_size, entry.input_shape[2]
    torch.manual_seed(0)
    model = create(name, num_classes=3, input_shape=(size, size, channels))
    x = torch.randn(2, channels, size, size)
    y = model(x)
    assert y.shape == (2, 3)
    y.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert all(p.grad is None for p in frozen)


# Deeper CIFAR twins share resnet20's / plain20's code: one depth of each is enough here.
BACKBONE_NAMES = [n for n in names() if not (info(n).family == "resnet_cifar" and not n.endswith("20"))]


@pytest.mark.parametrize("name", _params(BACKBONE_NAMES, HEAVY_BACKBONES))
def test_backbone_gives_the_feature_map(name: str) -> None:
    entry = info(name)
    size, channels = max(entry.min_size, 32), entry.input_shape[2]
    full = create(name, num_classes=4, input_shape=(size, size, channels)).eval()
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        fmap = full.features(x)
        assert fmap.dim() == 4 and fmap.shape[1] == full.num_features
        torch.testing.assert_close(full.head(fmap), full(x))  # CAM / Grad-CAM read features then head
    backbone = create(name, include_top=False, input_shape=(size, size, channels)).eval()
    assert backbone.num_features == full.num_features
    assert backbone(x).shape == fmap.shape
    pooled = create(name, include_top=False, pooling="avg", input_shape=(size, size, channels))
    assert pooled(x).shape == (2, full.num_features)
    assert count_params(backbone).total == count_params(full.features).total


@pytest.mark.parametrize("name", names())
def test_config_is_json_and_rebuilds_the_architecture(name: str) -> None:
    with torch.device("meta"):
        model = create(name, num_classes=5)
        config = json.loads(json.dumps(model.config))
        again = create(**config)
    shapes = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    assert shapes == {key: tuple(t.shape) for key, t in again.state_dict().items()}
    assert tuple(model.input_shape) == info(name).input_shape


def test_googlenet_aux_classifiers_in_training_only() -> None:
    model = create("googlenet", num_classes=6, aux_logits=True, input_shape=(32, 32, 3))
    y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 6)
    assert [a.shape for a in model.aux_outputs] == [(2, 6), (2, 6)]
    (y.sum() + 0.3 * sum(a.sum() for a in model.aux_outputs)).backward()
    assert model.aux1.fc2.weight.grad is not None
    model.eval()
    model(torch.randn(1, 3, 32, 32))
    assert model.aux_outputs == []


def test_googlenet_transform_input_rescales_imagenet_normalisation() -> None:
    plain = create("googlenet", input_shape=(32, 32, 3)).eval()
    transformed = create("googlenet", input_shape=(32, 32, 3), transform_input=True).eval()
    transformed.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 32, 32)  # an image in [0, 1]
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(transformed((x - mean) / std), plain((x - 0.5) / 0.5), rtol=1e-4, atol=1e-4)


def test_cifar_option_a_shortcut_is_subsample_and_zero_channels() -> None:
    model = create("resnet20")
    block = model.features.layer2[0]
    x = torch.randn(2, 16, 32, 32)
    short = block.shortcut(x)
    assert short.shape == (2, 32, 16, 16)
    torch.testing.assert_close(short[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(short[:, 16:]) == 0
    plain = create("plain20")
    assert count("plain20") == count("resnet20")
    assert not plain.features.layer2[0].residual


def test_resnet_conv_bias_option() -> None:
    with torch.device("meta"):
        keras_style = create("resnet18")
        torchvision_style = create("resnet18", conv_bias=False)
    assert keras_style.features.conv1.bias is not None
    assert torchvision_style.features.conv1.bias is None
