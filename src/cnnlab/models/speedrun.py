"""A fast CIFAR-10 net for GPU speed runs, in the style of Keller Jordan's airbench.

``cifar_speedrun``: a 3x3 stem conv (32 filters) with BN and GELU, then three
groups of ``conv3x3 -> max pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU`` with
64, 256 and 256 filters (32x32 -> 16 -> 8 -> 4), a 3x3 max pool (4x4 -> 1x1),
and a bias-free dense layer whose logits are scaled by 1/8 (a fixed temperature:
the net trains at a high learning rate without its logits blowing up).

Differences from airbench94 (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds"),
all on purpose so that the net is a plain zoo model trained by cnnlab's trainer:
the stem is a learned 3x3 conv instead of a frozen 2x2 patch-whitening conv, BN
scales are learned, and there is no lookahead/EMA or test-time flipping.

Shapes (N, 3, 32, 32) -> (N, 256, 4, 4) features -> (N, num_classes) logits.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.base import ZooModel, backbone_head, check_top_options
from cnnlab.models.registry import register

REFERENCE = "after K. Jordan, airbench (2024), arXiv:2404.00498; conv-BN-GELU 64/256/256 + max pooling"
BN_MOMENTUM = 0.4  # torch convention; fast-moving statistics suit runs of a few hundred steps


def _conv_bn(c_in: int, c_out: int, pool: bool) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = [("conv", nn.Conv2d(c_in, c_out, 3, padding=1, bias=False))]
    if pool:
        layers.append(("pool", nn.MaxPool2d(2)))
    layers += [("bn", nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM)), ("gelu", nn.GELU())]
    return layers


class ConvGroup(nn.Sequential):
    """conv -> max pool 2 -> BN -> GELU -> conv -> BN -> GELU: (N, C, H, W) -> (N, width, H/2, W/2)."""

    def __init__(self, c_in: int, width: int) -> None:
        first = _conv_bn(c_in, width, pool=True)
        second = _conv_bn(width, width, pool=False)
        super().__init__(OrderedDict([(f"{n}1", m) for n, m in first] + [(f"{n}2", m) for n, m in second]))


class ScaledLinear(nn.Linear):
    """A bias-free dense layer whose output is multiplied by ``scale``."""

    def __init__(self, in_features: int, out_features: int, scale: float) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.scale


@register(
    input_shape=(32, 32, 3),
    num_classes=10,
    params=1_980_384,
    trainable=1_978_016,
    reference=REFERENCE,
    min_size=8,
    description="fast CIFAR net for GPU speed runs: conv-BN-GELU groups 64/256/256 with max pooling",
)
def cifar_speedrun(
    *,
    num_classes: int,
    input_shape: tuple[int, int, int],
    include_top: bool,
    widths: tuple[int, int, int] | list[int] = (64, 256, 256),
    stem: int = 32,
    pooling: str | None = None,
) -> ZooModel:
    check_top_options(include_top, pooling)
    w1, w2, w3 = (int(w) for w in widths)
    features = nn.Sequential(OrderedDict(
        stem=nn.Sequential(OrderedDict(_conv_bn(input_shape[2], stem, pool=False))),
        group1=ConvGroup(stem, w1),
        group2=ConvGroup(w1, w2),
        group3=ConvGroup(w2, w3),
    ))
    if include_top:
        head: nn.Module = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveMaxPool2d(1), flatten=nn.Flatten(), fc=ScaledLinear(w3, num_classes, scale=1 / 8)))
    else:
        head = backbone_head(pooling)
    return ZooModel(features, head, num_features=w3)
