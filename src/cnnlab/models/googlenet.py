"""GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions").

Stem: conv 64@7x7/2, max 3/2, conv 64@1x1, conv 192@3x3, max 3/2; inception
modules 3a-3b, max 3/2, 4a-4e, max 2/2, 5a-5b; global average pooling, dropout
0.2, dense. An inception module concatenates four branches: 1x1; 1x1 then 3x3;
1x1 then "5x5"; 3x3 max pooling then 1x1. Every convolution is a bias-free
conv + batch norm (eps 1e-3) + ReLU ("BN-Inception" style, as torchvision).

Module names follow torchvision, so its weights load by name, and so does the
torchvision quirk that the "5x5" branch uses a 3x3 kernel (its published weights
have it): trainable parameters without the auxiliary heads are then 6,624,904.
``true_5x5=True`` uses the paper's 5x5 kernels instead (no torchvision weights).

``aux_logits=True`` adds the two auxiliary classifiers on inception 4a and 4d
(4x4 average pooling, conv 128@1x1, dense 1024, dropout 0.7, dense). In training
mode ``model(x)`` still returns the main logits and leaves the auxiliary ones in
``model.aux_outputs`` (aux1, aux2) for a weighted extra loss (0.3 each in the
paper); in eval mode they are not computed. Works from 32x32.

``transform_input=True`` maps ImageNet-normalised input to the (x - 0.5) / 0.5
scaling the torchvision weights were trained with (torchvision turns it on with
its pretrained GoogLeNet).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Unpack

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.blocks import conv_bn_act, pooled_classifier
from cnnlab.models.registry import TorchvisionMap, register
from cnnlab.nn.core import BatchNorm

BN = partial(BatchNorm, epsilon=1e-3)
AUX_TAPS = ("inception4a", "inception4d")


class BasicConv2d(nn.Sequential):
    """Bias-free conv, batch norm, ReLU (``conv``, ``bn``, ``relu``, torchvision's names)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__(conv_bn_act(in_channels, out_channels, kernel_size, stride=stride, padding=padding, norm=BN))


class Inception(nn.Module):
    """Four parallel branches concatenated: (N, C, H, W) -> (N, c1 + c3 + c5 + pool_proj, H, W)."""

    def __init__(
        self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool_proj: int, k5: int
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, c1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, c3_reduce, kernel_size=1), BasicConv2d(c3_reduce, c3, kernel_size=3, padding=1)
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, c5_reduce, kernel_size=1),
            BasicConv2d(c5_reduce, c5, kernel_size=k5, padding=k5 // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(in_channels, pool_proj, kernel_size=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: (N, C, H, W) -> (N, classes)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class InceptionFeatures(nn.Sequential):
    """The stem and the nine inception modules; can hand back the aux taps."""

    def forward(self, x: torch.Tensor, taps: list[torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        for name, module in self.named_children():
            x = module(x)
            if taps is not None and name in AUX_TAPS:
                taps.append(x)
        return x


class TransformInput(nn.Module):
    """ImageNet mean/std normalisation -> (x - 0.5) / 0.5, per RGB channel."""

    def __init__(self) -> None:
        super().__init__()
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        self.register_buffer("scale", (std / 0.5).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((mean - 0.5) / 0.5).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class GoogLeNet(ZooModel):
    """ZooModel plus optional auxiliary classifiers (``aux1`` on 4a, ``aux2`` on 4d)."""

    def __init__(self, features: InceptionFeatures, head: nn.Module, aux: tuple[nn.Module, nn.Module] | None) -> None:
        super().__init__(features, head, num_features=1024)
        self.aux1, self.aux2 = aux if aux is not None else (None, None)
        self.aux_outputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.aux1 is None or not self.training:
            self.aux_outputs = []
            return self.head(self.features(x))
        taps: list[torch.Tensor] = []
        out = self.head(self.features(x, taps))
        self.aux_outputs = [self.aux1(taps[0]), self.aux2(taps[1])]
        return out


def _rename(key: str) -> str:
    if key.startswith("fc."):
        return "head." + key
    if key.startswith("aux"):
        return key
    return "features." + key


TORCHVISION = TorchvisionMap(_rename, optional=lambda key: key.startswith(("aux1.", "aux2.")))


@register(
    input_shape=(224, 224, 3), num_classes=1000, min_size=32, params=6_639_464, trainable=6_624_904,
    reference="Szegedy et al. 2014, arXiv:1409.4842; torchvision layout",
    description="GoogLeNet / Inception v1 with batch norm (optional auxiliary classifiers)",
    torchvision=TORCHVISION,
)
def googlenet(
    *,
    aux_logits: bool = False,
    true_5x5: bool = False,
    transform_input: bool = False,
    dropout: float = 0.2,
    pooling: str | None = None,
    **core: Unpack[CoreArgs],
) -> GoogLeNet:
    """GoogLeNet as Table 1 of the paper, in torchvision's layout (see the module's notes)."""
    num_classes, input_shape, include_top = core["num_classes"], core["input_shape"], core["include_top"]
    check_top_options(include_top, pooling)
    k5 = 5 if true_5x5 else 3
    stem: OrderedDict[str, nn.Module] = OrderedDict()
    if transform_input:
        if input_shape[2] != 3:
            raise CnnlabError(
                f"transform_input needs RGB input, got {input_shape[2]} channels",
                where="googlenet: transform_input",
                fix="drop transform_input or use input_shape=(H, W, 3)",
            )
        stem["transform_input"] = TransformInput()
    features = InceptionFeatures(
        OrderedDict(
            **stem,
            conv1=BasicConv2d(input_shape[2], 64, kernel_size=7, stride=2, padding=3),
            maxpool1=nn.MaxPool2d(3, stride=2, ceil_mode=True),
            conv2=BasicConv2d(64, 64, kernel_size=1),
            conv3=BasicConv2d(64, 192, kernel_size=3, padding=1),
            maxpool2=nn.MaxPool2d(3, stride=2, ceil_mode=True),
            inception3a=Inception(192, 64, 96, 128, 16, 32, 32, k5),
            inception3b=Inception(256, 128, 128, 192, 32, 96, 64, k5),
            maxpool3=nn.MaxPool2d(3, stride=2, ceil_mode=True),
            inception4a=Inception(480, 192, 96, 208, 16, 48, 64, k5),
            inception4b=Inception(512, 160, 112, 224, 24, 64, 64, k5),
            inception4c=Inception(512, 128, 128, 256, 24, 64, 64, k5),
            inception4d=Inception(512, 112, 144, 288, 32, 64, 64, k5),
            inception4e=Inception(528, 256, 160, 320, 32, 128, 128, k5),
            maxpool4=nn.MaxPool2d(2, stride=2, ceil_mode=True),
            inception5a=Inception(832, 256, 160, 320, 32, 128, 128, k5),
            inception5b=Inception(832, 384, 192, 384, 48, 128, 128, k5),
        )
    )
    aux = None
    if include_top:
        head: nn.Module = pooled_classifier(1024, num_classes, dropout=dropout)
        if aux_logits:
            aux = (InceptionAux(512, num_classes), InceptionAux(528, num_classes))
    else:
        head = backbone_head(pooling)
    model = GoogLeNet(features, head, aux)
    for module in model.modules():  # torchvision: truncated normal, std 0.01
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-2, b=2)
    return model
