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

import torch
from torch import nn

from cnnlab.models.base import ZooModel, backbone_head, check_top_options
from cnnlab.models.registry import TorchvisionMap, register
from cnnlab.nn.core import BatchNorm

BN_EPS = 1.001e-5  # Keras Applications' DenseNet
REFERENCE = "Huang et al. 2017, arXiv:1608.06993; Keras Applications counts"


class DenseLayer(nn.Sequential):
    """BN-ReLU-conv1x1-BN-ReLU-conv3x3: (N, C, H, W) -> (N, growth, H, W)."""

    def __init__(self, in_channels: int, growth: int, bn_size: int) -> None:
        super().__init__(
            OrderedDict(
                norm1=BatchNorm(in_channels, epsilon=BN_EPS),
                relu1=nn.ReLU(),
                conv1=nn.Conv2d(in_channels, bn_size * growth, 1, bias=False),
                norm2=BatchNorm(bn_size * growth, epsilon=BN_EPS),
                relu2=nn.ReLU(),
                conv2=nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False),
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
    return nn.Sequential(
        OrderedDict(
            norm=BatchNorm(in_channels, epsilon=BN_EPS),
            relu=nn.ReLU(),
            conv=nn.Conv2d(in_channels, out_channels, 1, bias=False),
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
    growth: int,
    blocks: tuple[int, int, int, int],
    stem: int,
    *,
    num_classes: int,
    input_shape: tuple[int, int, int],
    include_top: bool,
    pooling: str | None,
) -> ZooModel:
    check_top_options(include_top, pooling)
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv0=nn.Conv2d(input_shape[2], stem, 7, stride=2, padding=3, bias=False),
        norm0=BatchNorm(stem, epsilon=BN_EPS),
        relu0=nn.ReLU(),
        pool0=nn.MaxPool2d(3, stride=2, padding=1),
    )
    width = stem
    for index, count in enumerate(blocks):
        layers[f"denseblock{index + 1}"] = DenseBlock(count, width, growth, bn_size=4)
        width += count * growth
        if index < len(blocks) - 1:
            layers[f"transition{index + 1}"] = _transition(width, width // 2)
            width //= 2
    layers["norm5"] = BatchNorm(width, epsilon=BN_EPS)
    layers["relu5"] = nn.ReLU()
    features = nn.Sequential(layers)
    if include_top:
        head: nn.Module = nn.Sequential(
            OrderedDict(
                avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), classifier=nn.Linear(width, num_classes)
            )
        )
    else:
        head = backbone_head(pooling)
    model = ZooModel(features, head, num_features=width)
    for module in model.modules():  # torchvision's initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
    return model


def _make(depth: int, growth: int, blocks: tuple[int, int, int, int], stem: int, params: int, trainable: int) -> None:
    name = f"densenet{depth}"

    @register(
        name=name,
        input_shape=(224, 224, 3),
        num_classes=1000,
        params=params,
        trainable=trainable,
        reference=REFERENCE,
        min_size=32,
        description=f"DenseNet-{depth} (growth {growth}, blocks {'-'.join(map(str, blocks))})",
        torchvision=TORCHVISION,
    )
    def build(
        *, num_classes: int, input_shape: tuple[int, int, int], include_top: bool, pooling: str | None = None
    ) -> ZooModel:
        return _densenet(
            growth,
            blocks,
            stem,
            num_classes=num_classes,
            input_shape=input_shape,
            include_top=include_top,
            pooling=pooling,
        )

    build.__name__ = build.__qualname__ = name


_make(121, 32, (6, 12, 24, 16), 64, 8_062_504, 7_978_856)
_make(161, 48, (6, 12, 36, 24), 96, 28_900_936, 28_681_000)
_make(169, 32, (6, 12, 32, 32), 64, 14_307_880, 14_149_480)
_make(201, 32, (6, 12, 48, 32), 64, 20_242_984, 20_013_928)
