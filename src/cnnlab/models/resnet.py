"""ResNet-18/34/50/101/152 for ImageNet (He, Zhang, Ren, Sun 2015, arXiv:1512.03385).

Stem: conv 64@7x7/2, batch norm, ReLU, max 3x3/2 (224 -> 56). Four stages of
basic blocks (two 3x3 convs; ResNet-18/34) or bottlenecks (1x1, 3x3, 1x1 with 4x
expansion; ResNet-50/101/152), the first block of stages 2-4 halving the size with
a projection shortcut (1x1 conv + batch norm). Global average pooling and a
dense layer close it. Works from 32x32 (stage 4 is then 1x1).

Module names and layout follow torchvision (stride on the 3x3 conv of a
bottleneck, "v1.5"), so its weights load by name. Counts follow Keras
Applications: every convolution before a batch norm carries a bias
(``conv_bias=True``; ResNet50 = 25,636,712 with batch-norm moving statistics),
and batch norm uses Keras Applications' epsilon 1.001e-5. ``conv_bias=False`` gives
torchvision's bias-free convolutions (ResNet50: 25,557,032 trainable).
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.base import ZooModel, backbone_head, check_top_options
from cnnlab.models.registry import TorchvisionMap, register
from cnnlab.nn.core import BatchNorm

BN_EPS = 1.001e-5  # Keras Applications' ResNet
REFERENCE = "He et al. 2015, arXiv:1512.03385; Keras Applications counts"


class BasicBlock(nn.Module):
    """Two 3x3 convs; (N, C_in, H, W) -> (N, planes, H/stride, W/stride)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, bias: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = BatchNorm(planes, epsilon=BN_EPS)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=bias)
        self.bn2 = BatchNorm(planes, epsilon=BN_EPS)
        self.downsample = _projection(in_planes, planes, stride, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand x4; (N, C_in, H, W) -> (N, 4 planes, H/s, W/s)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int, bias: bool) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=bias)
        self.bn1 = BatchNorm(planes, epsilon=BN_EPS)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=bias)
        self.bn2 = BatchNorm(planes, epsilon=BN_EPS)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=bias)
        self.bn3 = BatchNorm(out_planes, epsilon=BN_EPS)
        self.relu = nn.ReLU()
        self.downsample = _projection(in_planes, out_planes, stride, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _projection(in_planes: int, out_planes: int, stride: int, bias: bool) -> nn.Sequential | None:
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=bias),
        BatchNorm(out_planes, epsilon=BN_EPS),
    )


def _rename(key: str) -> str:
    return "head." + key if key.startswith("fc.") else "features." + key


_CONV_BIAS = re.compile(r"^features\.(conv1|layer\d+\.\d+\.(conv\d|downsample\.0))\.bias$")
TORCHVISION = TorchvisionMap(_rename, zero_fill=lambda key: bool(_CONV_BIAS.match(key)))


def resnet_backbone(
    block: type[BasicBlock] | type[Bottleneck], layers: list[int], in_channels: int, bias: bool
) -> tuple[nn.Sequential, int]:
    """The stem and four stages; returns (features, output channels)."""
    stages: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=bias),
        bn1=BatchNorm(64, epsilon=BN_EPS),
        relu=nn.ReLU(),
        maxpool=nn.MaxPool2d(3, stride=2, padding=1),
    )
    in_planes = 64
    for index, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
        stride = 1 if index == 0 else 2
        stage = []
        for number in range(blocks):
            stage.append(block(in_planes, planes, stride if number == 0 else 1, bias))
            in_planes = planes * block.expansion
        stages[f"layer{index + 1}"] = nn.Sequential(*stage)
    return nn.Sequential(stages), in_planes


def _resnet(
    block: type[BasicBlock] | type[Bottleneck],
    layers: list[int],
    *,
    num_classes: int,
    input_shape: tuple[int, int, int],
    include_top: bool,
    conv_bias: bool,
    pooling: str | None,
) -> ZooModel:
    check_top_options(include_top, pooling)
    features, width = resnet_backbone(block, layers, input_shape[2], conv_bias)
    if include_top:
        head: nn.Module = nn.Sequential(
            OrderedDict(avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(width, num_classes))
        )
    else:
        head = backbone_head(pooling)
    model = ZooModel(features, head, num_features=width)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def _make(name: str, block: type[BasicBlock] | type[Bottleneck], layers: list[int], params: int, trainable: int) -> None:
    @register(
        name=name,
        input_shape=(224, 224, 3),
        num_classes=1000,
        params=params,
        trainable=trainable,
        reference=REFERENCE,
        min_size=32,
        description=f"ResNet-{name[6:]} (ImageNet)",
        torchvision=TORCHVISION,
    )
    def build(
        *,
        num_classes: int,
        input_shape: tuple[int, int, int],
        include_top: bool,
        conv_bias: bool = True,
        pooling: str | None = None,
    ) -> ZooModel:
        return _resnet(
            block,
            layers,
            num_classes=num_classes,
            input_shape=input_shape,
            include_top=include_top,
            conv_bias=conv_bias,
            pooling=pooling,
        )

    build.__name__ = build.__qualname__ = name


_make("resnet18", BasicBlock, [2, 2, 2, 2], 11_703_912, 11_694_312)
_make("resnet34", BasicBlock, [3, 4, 6, 3], 21_823_208, 21_806_184)
_make("resnet50", Bottleneck, [3, 4, 6, 3], 25_636_712, 25_583_592)
_make("resnet101", Bottleneck, [3, 4, 23, 3], 44_707_176, 44_601_832)
_make("resnet152", Bottleneck, [3, 8, 36, 3], 60_419_944, 60_268_520)
