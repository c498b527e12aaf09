"""VGG-11/13/16/19 (Simonyan & Zisserman 2014, configurations A, B, D, E), with
and without batch normalisation, in torchvision's layout.

Features: stacks of 3x3 'same' convolutions (+ batch norm) + ReLU, each stack
closed by a 2x2 max pooling: 224 -> 7 after five stacks (32 -> 1). The head
pools adaptively to 7x7, so any input from 32x32 up works with the same
weights: flatten (25,088), 4096, dropout, 4096, dropout, classes.
VGG16 has 138,357,544 parameters and VGG19 143,667,240 (Keras and torchvision agree).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Unpack

from torch import nn

from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.blocks import conv_bn_act, init_conv_he
from cnnlab.models.registry import TorchvisionMap, register
from cnnlab.nn.core import BatchNorm

M = "M"  # a 2x2 max pooling in a configuration
# The paper's Table 1: the widths of the 3x3 convolutions, column by column.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "B": [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "D": [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M],
    "E": [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M],
}
BN = partial(BatchNorm, epsilon=1e-5)  # torchvision's VGG-BN, whose weights load by name
REFERENCE = "Simonyan & Zisserman 2014, arXiv:1409.1556"


def _rename(key: str) -> str:
    return "head." + key if key.startswith("classifier.") else key


TORCHVISION = TorchvisionMap(_rename)


def _features(config: list[int | str], in_channels: int, batch_norm: bool) -> nn.Sequential:
    # Flat nn.Sequential so the indices equal torchvision's (features.0.weight ...).
    layers: list[nn.Module] = []
    for item in config:
        if item == M:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        assert isinstance(item, int)
        layers += conv_bn_act(in_channels, item, 3, padding=1, bias=True, norm=BN if batch_norm else None).values()
        in_channels = item
    return nn.Sequential(*layers)


def _vgg(
    config: str, *, batch_norm: bool, dropout: float, pooling: str | None,
    num_classes: int, input_shape: tuple[int, int, int], include_top: bool,
) -> ZooModel:
    """Configuration ``config`` of Table 1; torchvision's layout and initialisation."""
    check_top_options(include_top, pooling)
    features = _features(CONFIGS[config], input_shape[2], batch_norm)
    if include_top:
        head: nn.Module = nn.Sequential(
            OrderedDict(
                avgpool=nn.AdaptiveAvgPool2d((7, 7)),
                flatten=nn.Flatten(),
                classifier=nn.Sequential(
                    nn.Linear(512 * 7 * 7, 4096),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                    nn.Linear(4096, 4096),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                    nn.Linear(4096, num_classes),
                ),
            )
        )
    else:
        head = backbone_head(pooling)
    model = ZooModel(features, head, num_features=512)
    init_conv_he(model)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)
    return model


# Counts with 1000 classes; batch-norm variants add 4 weights per conv channel,
# 2 of them (moving mean and variance) non-trainable.
register_vgg = partial(
    register, input_shape=(224, 224, 3), num_classes=1000, reference=REFERENCE, min_size=32, torchvision=TORCHVISION
)


@register_vgg(params=132_863_336, description="VGG-11")
def vgg11(*, dropout: float = 0.5, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """VGG-11, configuration A of Table 1.

    Eight convolutions in five stacks of 1, 1, 2, 2 and 2, then three dense layers.
    """
    return _vgg("A", batch_norm=False, dropout=dropout, pooling=pooling, **core)


@register_vgg(params=133_047_848, description="VGG-13")
def vgg13(*, dropout: float = 0.5, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """VGG-13, configuration B: A with a second convolution in each of the first two stacks."""
    return _vgg("B", batch_norm=False, dropout=dropout, pooling=pooling, **core)


@register_vgg(params=138_357_544, description="VGG-16")
def vgg16(*, dropout: float = 0.5, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """VGG-16, configuration D: three convolutions in each of the last three stacks (13 in all).

    138,357,544 parameters with 1000 classes, as Keras and torchvision count them.
    """
    return _vgg("D", batch_norm=False, dropout=dropout, pooling=pooling, **core)


@register_vgg(params=143_667_240, description="VGG-19")
def vgg19(*, dropout: float = 0.5, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """VGG-19, configuration E: four convolutions in each of the last three stacks (16 in all)."""
    return _vgg("E", batch_norm=False, dropout=dropout, pooling=pooling, **core)


@register_vgg(params=132_874_344, trainable=132_868_840, description="VGG-11 with batch norm")
def vgg11_bn(*, dropout: float = 0.5, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """VGG-11 with a batch norm between each convolution and its ReLU.

    Not in the paper (batch norm is Ioffe & Szegedy 2015, arXiv:1502.03167): torchvision's
    variant, whose weights load by name.
    """
    return _vgg("A", batch_norm=True, dropout=dropout, pooling=pooling, **core)


@register_vgg(params=133_059_624, trainable=133_053_736, description="VGG-13 with batch norm")
def vgg13_bn(*, dropout: float = 0.5, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """VGG-13 with batch norm: 4 x 2,944 = 11,776 more weights than VGG-13 (one per conv channel each)."""
    return _vgg("B", batch_norm=True, dropout=dropout, pooling=pooling, **core)


@register_vgg(params=138_374_440, trainable=138_365_992, description="VGG-16 with batch norm")
def vgg16_bn(*, dropout: float = 0.5, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """VGG-16 with batch norm.

    Half of the 16,896 weights batch norm adds are moving statistics, hence non-trainable.
    """
    return _vgg("D", batch_norm=True, dropout=dropout, pooling=pooling, **core)


@register_vgg(params=143_689_256, trainable=143_678_248, description="VGG-19 with batch norm")
def vgg19_bn(*, dropout: float = 0.5, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """VGG-19 with batch norm, the deepest configuration: 16 conv, batch norm, ReLU units."""
    return _vgg("E", batch_norm=True, dropout=dropout, pooling=pooling, **core)
