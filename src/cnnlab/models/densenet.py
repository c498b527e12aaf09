"""DenseNet-121/161/169/201 (Huang, Liu, van der Maaten, Weinberger 2017, arXiv:1608.06993).

Stem: conv 7x7/2 (bias-free), batch norm, ReLU, max 3x3/2. Four dense blocks:
each layer is BN-ReLU-conv 1x1 (4 x growth) -BN-ReLU-conv 3x3 (growth) and
receives the concatenation of every earlier map of its block; between blocks a
transition (BN-ReLU-conv 1x1 halving the width, average pooling 2x2). A final
batch norm and ReLU give the last feature map; global average pooling and a dense
layer classify. Works from 32x32 (block 4 is then 1x1).

Module names follow torchvision, so its weights load by name; counts follow
Keras Applications (batch-norm moving statistics count as non-trainable):
DenseNet121 8,062,504, DenseNet169 14,307,880, DenseNet201 20,242,984.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import partial
from typing import Unpack

import torch
from torch import nn

from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.blocks import conv_bn_act, pooled_classifier
from cnnlab.models.registry import TorchvisionMap, register
from cnnlab.nn.core import BatchNorm

BN = partial(BatchNorm, epsilon=1.001e-5)  # Keras Applications' DenseNet
REFERENCE = "Huang et al. 2017, arXiv:1608.06993; Keras Applications counts"
preact = partial(conv_bn_act, norm=BN, pre_activation=True)  # BN-ReLU-conv, DenseNet's unit


class DenseLayer(nn.Sequential):
    """BN-ReLU-conv1x1-BN-ReLU-conv3x3: (N, C, H, W) -> (N, growth, H, W)."""

    def __init__(self, in_channels: int, growth: int, bn_size: int) -> None:
        super().__init__(
            OrderedDict(
                **preact(in_channels, bn_size * growth, 1, names=("conv1", "norm1", "relu1")),
                **preact(bn_size * growth, growth, 3, padding=1, names=("conv2", "norm2", "relu2")),
            )
        )


class DenseBlock(nn.ModuleDict):
    """``layers`` dense layers: (N, C, H, W) -> (N, C + layers * growth, H, W)."""

    def __init__(self, layers: int, in_channels: int, growth: int, bn_size: int) -> None:
        super().__init__(
            {f"denselayer{i + 1}": DenseLayer(in_channels + i * growth, growth, bn_size) for i in range(layers)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [x]
        for layer in self.values():
            maps.append(layer(torch.cat(maps, 1)))
        return torch.cat(maps, 1)


def _transition(in_channels: int, out_channels: int) -> nn.Sequential:
    """BN-ReLU-conv 1x1 to ``out_channels``, then 2x2 average pooling (halves the map)."""
    return nn.Sequential(
        OrderedDict(
            **preact(in_channels, out_channels, 1, names=("conv", "norm", "relu")),
            pool=nn.AvgPool2d(2, stride=2),
        )
    )


# Old torchvision checkpoints name 'denselayer1.norm.1.weight' what is now 'denselayer1.norm1.weight'.
_OLD_LAYER_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def _rename(key: str) -> str:
    key = _OLD_LAYER_KEY.sub(lambda m: m.group(1) + m.group(2), key)
    return "head." + key if key.startswith("classifier.") else key


TORCHVISION = TorchvisionMap(_rename)


def _densenet(
    growth: int, blocks: tuple[int, int, int, int], stem: int, *, pooling: str | None,
    num_classes: int, input_shape: tuple[int, int, int], include_top: bool,
) -> ZooModel:
    """A ``stem``-wide stem, dense blocks of ``blocks`` layers adding ``growth`` channels each."""
    check_top_options(include_top, pooling)
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        **conv_bn_act(input_shape[2], stem, 7, stride=2, padding=3, norm=BN, names=("conv0", "norm0", "relu0")),
        pool0=nn.MaxPool2d(3, stride=2, padding=1),
    )
    width = stem
    for index, count in enumerate(blocks):
        layers[f"denseblock{index + 1}"] = DenseBlock(count, width, growth, bn_size=4)
        width += count * growth
        if index < len(blocks) - 1:
            layers[f"transition{index + 1}"] = _transition(width, width // 2)
            width //= 2
    layers["norm5"] = BN(width)
    layers["relu5"] = nn.ReLU()
    head = pooled_classifier(width, num_classes, fc="classifier") if include_top else backbone_head(pooling)
    model = ZooModel(nn.Sequential(layers), head, num_features=width)
    for module in model.modules():  # torchvision's initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
    return model


register_densenet = partial(
    register, input_shape=(224, 224, 3), num_classes=1000, reference=REFERENCE, min_size=32, torchvision=TORCHVISION
)


@register_densenet(params=8_062_504, trainable=7_978_856, description="DenseNet-121 (growth 32, blocks 6-12-24-16)")
def densenet121(*, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """DenseNet-121, the first column of Table 1 (k = 32).

    Dense blocks of 6, 12, 24 and 16 layers after a 64-filter stem.
    """
    return _densenet(32, (6, 12, 24, 16), 64, pooling=pooling, **core)


@register_densenet(params=28_900_936, trainable=28_681_000, description="DenseNet-161 (growth 48, blocks 6-12-36-24)")
def densenet161(*, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """DenseNet-161: the wide one, growth k = 48 and a 96-filter stem (2k).

    Not a column of Table 1: the authors released it beside the k = 32 nets, and torchvision has it.
    """
    return _densenet(48, (6, 12, 36, 24), 96, pooling=pooling, **core)


@register_densenet(params=14_307_880, trainable=14_149_480, description="DenseNet-169 (growth 32, blocks 6-12-32-32)")
def densenet169(*, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """DenseNet-169.

    Blocks 3 and 4 grow to 32 layers each.
    """
    return _densenet(32, (6, 12, 32, 32), 64, pooling=pooling, **core)


@register_densenet(params=20_242_984, trainable=20_013_928, description="DenseNet-201 (growth 32, blocks 6-12-48-32)")
def densenet201(*, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """DenseNet-201 (k = 32), Table 1's third column: its third block has 48 layers."""
    return _densenet(32, (6, 12, 48, 32), 64, pooling=pooling, **core)
