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
from functools import partial
from typing import Unpack

import torch
from torch import nn

from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.blocks import conv_bn_act, init_conv_he, pooled_classifier
from cnnlab.models.registry import TorchvisionMap, register
from cnnlab.nn.core import BatchNorm

BN = partial(BatchNorm, epsilon=1.001e-5)  # Keras Applications' ResNet
REFERENCE = "He et al. 2015, arXiv:1512.03385; Keras Applications counts"


class BasicBlock(nn.Module):
    """Two 3x3 convs; (N, C_in, H, W) -> (N, planes, H/stride, W/stride)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, bias: bool) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn_act(in_planes, planes, 3, stride=stride, padding=1, bias=bias, norm=BN, act=None).values()
        self.relu = nn.ReLU()
        self.conv2, self.bn2 = conv_bn_act(planes, planes, 3, padding=1, bias=bias, norm=BN, act=None).values()
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
        self.conv1, self.bn1 = conv_bn_act(in_planes, planes, 1, bias=bias, norm=BN, act=None).values()
        self.conv2, self.bn2 = conv_bn_act(planes, planes, 3, stride=stride, padding=1, bias=bias, norm=BN, act=None).values()
        self.conv3, self.bn3 = conv_bn_act(planes, out_planes, 1, bias=bias, norm=BN, act=None).values()
        self.relu = nn.ReLU()
        self.downsample = _projection(in_planes, out_planes, stride, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _projection(in_planes: int, out_planes: int, stride: int, bias: bool) -> nn.Sequential | None:
    """The projection shortcut (1x1 conv + batch norm) where the shape changes, else None (identity)."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(*conv_bn_act(in_planes, out_planes, 1, stride=stride, bias=bias, norm=BN, act=None).values())


def _rename(key: str) -> str:
    return "head." + key if key.startswith("fc.") else "features." + key


_CONV_BIAS = re.compile(r"^features\.(conv1|layer\d+\.\d+\.(conv\d|downsample\.0))\.bias$")
TORCHVISION = TorchvisionMap(_rename, zero_fill=lambda key: bool(_CONV_BIAS.match(key)))


def resnet_backbone(
    block: type[BasicBlock] | type[Bottleneck], layers: list[int], in_channels: int, bias: bool
) -> tuple[nn.Sequential, int]:
    """The stem and four stages; returns (features, output channels)."""
    stages: OrderedDict[str, nn.Module] = OrderedDict(
        **conv_bn_act(in_channels, 64, 7, stride=2, padding=3, bias=bias, norm=BN, names=("conv1", "bn1", "relu")),
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
    block: type[BasicBlock] | type[Bottleneck], layers: list[int], *, conv_bias: bool, pooling: str | None,
    num_classes: int, input_shape: tuple[int, int, int], include_top: bool,
) -> ZooModel:
    """``layers[i]`` blocks in stage i; torchvision's layout and initialisation."""
    check_top_options(include_top, pooling)
    features, width = resnet_backbone(block, layers, input_shape[2], conv_bias)
    head = pooled_classifier(width, num_classes) if include_top else backbone_head(pooling)
    model = ZooModel(features, head, num_features=width)
    init_conv_he(model)
    return model


register_resnet = partial(
    register, input_shape=(224, 224, 3), num_classes=1000, reference=REFERENCE, min_size=32, torchvision=TORCHVISION
)


@register_resnet(params=11_703_912, trainable=11_694_312, description="ResNet-18 (ImageNet)")
def resnet18(*, conv_bias: bool = True, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-18, the 18-layer column of Table 1: two basic blocks in every stage (1.8 GFLOPs)."""
    return _resnet(BasicBlock, [2, 2, 2, 2], conv_bias=conv_bias, pooling=pooling, **core)


@register_resnet(params=21_823_208, trainable=21_806_184, description="ResNet-34 (ImageNet)")
def resnet34(*, conv_bias: bool = True, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-34: basic blocks 3, 4, 6, 3 (3.6 GFLOPs).

    The residual twin of the 34-layer plain net of Fig. 4, which trains worse than its 18-layer one.
    """
    return _resnet(BasicBlock, [3, 4, 6, 3], conv_bias=conv_bias, pooling=pooling, **core)


@register_resnet(params=25_636_712, trainable=25_583_592, description="ResNet-50 (ImageNet)")
def resnet50(*, conv_bias: bool = True, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-50: ResNet-34's stages with bottlenecks (1x1, 3x3, 1x1 x4) for basic blocks; 3.8 GFLOPs."""
    return _resnet(Bottleneck, [3, 4, 6, 3], conv_bias=conv_bias, pooling=pooling, **core)


@register_resnet(params=44_707_176, trainable=44_601_832, description="ResNet-101 (ImageNet)")
def resnet101(*, conv_bias: bool = True, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-101.

    Stage 3 grows to 23 bottlenecks; 7.6 GFLOPs.
    """
    return _resnet(Bottleneck, [3, 4, 23, 3], conv_bias=conv_bias, pooling=pooling, **core)


@register_resnet(params=60_419_944, trainable=60_268_520, description="ResNet-152 (ImageNet)")
def resnet152(*, conv_bias: bool = True, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-152, the deepest of Table 1: bottlenecks 3, 8, 36, 3, still fewer FLOPs (11.3 G) than VGG-16 (15.3 G)."""
    return _resnet(Bottleneck, [3, 8, 36, 3], conv_bias=conv_bias, pooling=pooling, **core)
