"""ResNet-20/32/44/56/110 for CIFAR-10 and their plain twins (He et al. 2015, §4.2).

A 3x3 conv with 16 filters, then three stages of n basic blocks (two 3x3 convs
each) with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps (depth 6n + 2),
global average pooling and a dense layer. The first block of stages 2 and 3
halves the size with a stride-2 conv. Shortcuts are option A: identity, and where
the size halves and the width doubles, the input subsampled by 2 and zero-padded
with new channels, so shortcuts add no parameters (ResNet-20 0.27M ... ResNet-110
1.7M, as the paper's Table 6). ``plainN`` is the same stack without shortcuts,
the network whose training error grows with depth (the convolution notes' ResNet section, Fig. 16).

``width`` (every model of the family) is the first stage's filters w; the stages
have w, 2w and 4w (default 16: He et al.'s nets and counts). Narrower nets keep the
depth, so the degradation experiment can run on a CPU at, say, w = 8 (a quarter of
the weights and about a quarter of the multiply-adds).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Unpack

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.blocks import conv_bn_act, init_conv_he, pooled_classifier
from cnnlab.models.registry import register
from cnnlab.nn.core import BatchNorm

BN = partial(BatchNorm, epsilon=1e-5)  # as the paper's Torch/Caffe models
REFERENCE = "He et al. 2015, arXiv:1512.03385, §4.2 (CIFAR-10)"


class CifarBlock(nn.Module):
    """conv-BN-ReLU-conv-BN (+ option-A shortcut) -ReLU; (N, C, H, W) -> (N, planes, H/s, W/s)."""

    def __init__(self, in_planes: int, planes: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn_act(in_planes, planes, 3, stride=stride, padding=1, norm=BN, act=None).values()
        self.conv2, self.bn2 = conv_bn_act(planes, planes, 3, padding=1, norm=BN, act=None).values()
        self.relu = nn.ReLU()
        self.residual = residual
        self.stride = stride
        self.extra_channels = planes - in_planes

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Option A: subsample by the stride, append zero channels."""
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + self.shortcut(x)
        return self.relu(out)

    def extra_repr(self) -> str:
        return "shortcut=A" if self.residual else "plain"


def _cifar_resnet(
    depth: int, *, residual: bool, pooling: str | None, width: int,
    num_classes: int, input_shape: tuple[int, int, int], include_top: bool,
) -> ZooModel:
    """Depth 6n + 2: a 3x3 conv, 3 stages of n blocks (w, 2w, 4w filters; w = 16), average pooling, dense.

    Parameters (Keras-style, bias-free convs, C input channels, K classes):
    trainable = 9 (C w + (42 n - 10) w^2) + 2 w (1 + 14 n) + 4 w K + K (convs, BN scale and shift, dense),
    plus 2 w (1 + 14 n) non-trainable batch-norm statistics.
    """
    check_top_options(include_top, pooling)
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        name = f"{'resnet' if residual else 'plain'}{depth}"
        raise CnnlabError(f"must be a whole number of filters >= 1, got {width!r}", where=f"{name}: option 'width'",
                          fix="pass e.g. width=16 (He et al.'s nets) or width=8 (a narrower twin), or leave it out")
    blocks = (depth - 2) // 6
    stages: OrderedDict[str, nn.Module] = OrderedDict(
        conv_bn_act(input_shape[2], width, 3, padding=1, norm=BN, names=("conv1", "bn1", "relu"))
    )
    in_planes = width
    for index, planes in enumerate((width, 2 * width, 4 * width)):
        stage = []
        for number in range(blocks):
            stride = 2 if index > 0 and number == 0 else 1
            stage.append(CifarBlock(in_planes, planes, stride, residual))
            in_planes = planes
        stages[f"layer{index + 1}"] = nn.Sequential(*stage)
    head = pooled_classifier(4 * width, num_classes) if include_top else backbone_head(pooling)
    model = ZooModel(nn.Sequential(stages), head, num_features=4 * width)
    init_conv_he(model)
    return model


# Keras-style total and trainable counts with 10 classes; He et al. Table 6 quotes
# the trainable ones: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M. Plain twins have the same.
register_cifar = partial(register, input_shape=(32, 32, 3), num_classes=10, reference=REFERENCE, min_size=8)


@register_cifar(params=271_098, trainable=269_722, description="ResNet-20 for CIFAR (option A shortcuts)")
def resnet20(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-20, n = 3 blocks per stage.

    0.27M parameters and 8.75% test error on CIFAR-10 in Table 6.
    """
    return _cifar_resnet(20, residual=True, pooling=pooling, width=width, **core)


@register_cifar(params=466_426, trainable=464_154, description="ResNet-32 for CIFAR (option A shortcuts)")
def resnet32(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-32, n = 5.

    0.46M parameters; 7.51% error.
    """
    return _cifar_resnet(32, residual=True, pooling=pooling, width=width, **core)


@register_cifar(params=661_754, trainable=658_586, description="ResNet-44 for CIFAR (option A shortcuts)")
def resnet44(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-44 (n = 7), 0.66M parameters.

    Deeper is better with shortcuts: 7.17% error.
    """
    return _cifar_resnet(44, residual=True, pooling=pooling, width=width, **core)


@register_cifar(params=857_082, trainable=853_018, description="ResNet-56 for CIFAR (option A shortcuts)")
def resnet56(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-56.

    Nine blocks per stage, 0.85M parameters, 6.97% error: the residual twin of Fig. 1's plain-56.
    """
    return _cifar_resnet(56, residual=True, pooling=pooling, width=width, **core)


@register_cifar(params=1_736_058, trainable=1_727_962, description="ResNet-110 for CIFAR (option A shortcuts)")
def resnet110(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """ResNet-110 (n = 18, 1.7M parameters).

    The best of Table 6 at 6.43% error; the paper warms its training up at learning rate 0.01.
    """
    return _cifar_resnet(110, residual=True, pooling=pooling, width=width, **core)


@register_cifar(params=271_098, trainable=269_722, description="plain-20 for CIFAR (no shortcuts)")
def plain20(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """Plain-20: ResNet-20 without its shortcuts.

    The shallowest plain net of Fig. 6 (left) and the best trained of them.
    """
    return _cifar_resnet(20, residual=False, pooling=pooling, width=width, **core)


@register_cifar(params=466_426, trainable=464_154, description="plain-32 for CIFAR (no shortcuts)")
def plain32(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """Plain-32.

    Same 32 layers as ResNet-32, no shortcuts.
    """
    return _cifar_resnet(32, residual=False, pooling=pooling, width=width, **core)


@register_cifar(params=661_754, trainable=658_586, description="plain-44 for CIFAR (no shortcuts)")
def plain44(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """Plain-44, deeper and worse.

    Its training error is above plain-20's (Fig. 6): the degradation problem.
    """
    return _cifar_resnet(44, residual=False, pooling=pooling, width=width, **core)


@register_cifar(params=857_082, trainable=853_018, description="plain-56 for CIFAR (no shortcuts)")
def plain56(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """Plain-56, Fig. 1's deeper net.

    Higher training and test error than plain-20, where ResNet-56 beats ResNet-20.
    """
    return _cifar_resnet(56, residual=False, pooling=pooling, width=width, **core)


@register_cifar(params=1_736_058, trainable=1_727_962, description="plain-110 for CIFAR (no shortcuts)")
def plain110(*, width: int = 16, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """Plain-110.

    Its error stays above 60% (Fig. 6 leaves it out); a test of how deep a plain stack can go.
    """
    return _cifar_resnet(110, residual=False, pooling=pooling, width=width, **core)
