"""AlexNet, in torchvision's single-tower form (Krizhevsky 2014, "One weird trick").

Layers (224x224x3 input): conv 64@11x11/4 pad 2, max 3/2, conv 192@5x5 pad 2,
max 3/2, conv 384@3x3, conv 256@3x3, conv 256@3x3, max 3/2 -> 6x6x256,
adaptive average pooling to 6x6, dropout, 4096, dropout, 4096, classes.
61,100,840 parameters with 1000 classes, as torchvision. The original two-GPU
net of the lecture notes' AlexNet list (§3.3) had 96/256 filters in its first layers and 60M parameters.
The smallest input is 63x63 (the last max pooling needs a 3x3 map).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Unpack

from torch import nn

from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.blocks import conv_bn_act
from cnnlab.models.registry import TorchvisionMap, register

conv_relu = partial(conv_bn_act, bias=True, norm=None)  # AlexNet predates batch norm


def _rename(key: str) -> str:
    # torchvision: features.N / classifier.N; ours: features.N / head.classifier.N
    return "head." + key if key.startswith("classifier.") else key


@register(
    input_shape=(224, 224, 3), num_classes=1000, min_size=63, params=61_100_840,
    reference="Krizhevsky et al. 2012, NeurIPS; torchvision single-tower variant (arXiv:1404.5997)",
    description="AlexNet (torchvision layout)",
    torchvision=TorchvisionMap(_rename),
)
def alexnet(*, dropout: float = 0.5, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """Five convolutions (three max poolings), then dropout and three dense layers."""
    check_top_options(core["include_top"], pooling)
    # Flat, so the indices match torchvision's nn.Sequential and its weights load by name.
    features = nn.Sequential(
        *conv_relu(core["input_shape"][2], 64, 11, stride=4, padding=2).values(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        *conv_relu(64, 192, 5, padding=2).values(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        *conv_relu(192, 384, 3, padding=1).values(),
        *conv_relu(384, 256, 3, padding=1).values(),
        *conv_relu(256, 256, 3, padding=1).values(),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )
    if not core["include_top"]:
        return ZooModel(features, backbone_head(pooling), num_features=256)
    head = nn.Sequential(
        OrderedDict(
            avgpool=nn.AdaptiveAvgPool2d((6, 6)),
            flatten=nn.Flatten(),
            classifier=nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(256 * 6 * 6, 4096),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(4096, 4096),
                nn.ReLU(),
                nn.Linear(4096, core["num_classes"]),
            ),
        )
    )
    return ZooModel(features, head, num_features=256)
