"""ResNet-20/32/44/56/110 for CIFAR-10 and their plain twins (He et al. 2015, §4.2).

A 3x3 conv with 16 filters, then three stages of n basic blocks (two 3x3 convs
each) with 16, 32 and 64 filters on 32x32, 16x16 and 8x8 maps (depth 6n + 2),
global average pooling and a dense layer. The first block of stages 2 and 3
halves the size with a stride-2 conv. Shortcuts are option A: identity, and where
the size halves and the width doubles, the input subsampled by 2 and zero-padded
with new channels, so shortcuts add no parameters (ResNet-20 0.27M ... ResNet-110
1.7M, as the paper's Table 6). ``plainN`` is the same stack without shortcuts,
the network whose training error grows with depth (seed 000 Fig. 16).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.base import ZooModel, backbone_head, check_top_options
from cnnlab.models.registry import register
from cnnlab.nn.core import BatchNorm

BN_EPS = 1e-5  # as the paper's Torch/Caffe models
REFERENCE = "He et al. 2015, arXiv:1512.03385, §4.2 (CIFAR-10)"


class CifarBlock(nn.Module):
    """conv-BN-ReLU-conv-BN (+ option-A shortcut) -ReLU; (N, C, H, W) -> (N, planes, H/s, W/s)."""

    def __init__(self, in_planes: int, planes: int, stride: int, residual: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm(planes, epsilon=BN_EPS)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = BatchNorm(planes, epsilon=BN_EPS)
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
    depth: int,
    residual: bool,
    *,
    num_classes: int,
    input_shape: tuple[int, int, int],
    include_top: bool,
    pooling: str | None,
) -> ZooModel:
    check_top_options(include_top, pooling)
    blocks = (depth - 2) // 6
    stages: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=nn.Conv2d(input_shape[2], 16, 3, padding=1, bias=False),
        bn1=BatchNorm(16, epsilon=BN_EPS),
        relu=nn.ReLU(),
    )
    in_planes = 16
    for index, planes in enumerate((16, 32, 64)):
        stage = []
        for number in range(blocks):
            stride = 2 if index > 0 and number == 0 else 1
            stage.append(CifarBlock(in_planes, planes, stride, residual))
            in_planes = planes
        stages[f"layer{index + 1}"] = nn.Sequential(*stage)
    features = nn.Sequential(stages)
    if include_top:
        head: nn.Module = nn.Sequential(
            OrderedDict(avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(64, num_classes))
        )
    else:
        head = backbone_head(pooling)
    model = ZooModel(features, head, num_features=64)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model


def _make(depth: int, residual: bool, params: int, trainable: int) -> None:
    name = f"{'resnet' if residual else 'plain'}{depth}"

    @register(
        name=name,
        input_shape=(32, 32, 3),
        num_classes=10,
        params=params,
        trainable=trainable,
        reference=REFERENCE,
        min_size=8,
        description=f"{'ResNet' if residual else 'plain'}-{depth} for CIFAR ({'option A shortcuts' if residual else 'no shortcuts'})",
    )
    def build(
        *, num_classes: int, input_shape: tuple[int, int, int], include_top: bool, pooling: str | None = None
    ) -> ZooModel:
        return _cifar_resnet(
            depth, residual, num_classes=num_classes, input_shape=input_shape, include_top=include_top, pooling=pooling
        )

    build.__name__ = build.__qualname__ = name


# Keras-style total and trainable counts with 10 classes; He et al. Table 6 quotes
# the trainable ones: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M. Plain twins have the same.
COUNTS = {
    20: (271_098, 269_722),
    32: (466_426, 464_154),
    44: (661_754, 658_586),
    56: (857_082, 853_018),
    110: (1_736_058, 1_727_962),
}
for _residual in (True, False):
    for _depth, (_params, _trainable) in COUNTS.items():
        _make(_depth, _residual, _params, _trainable)
