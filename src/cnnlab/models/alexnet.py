"""AlexNet, in torchvision's single-tower form (Krizhevsky 2014, "One weird trick").

Layers (224x224x3 input): conv 64@11x11/4 pad 2, max 3/2, conv 192@5x5 pad 2,
max 3/2, conv 384@3x3, conv 256@3x3, conv 256@3x3, max 3/2 -> 6x6x256,
adaptive average pooling to 6x6, dropout, 4096, dropout, 4096, classes.
61,100,840 parameters with 1000 classes, as torchvision. The original two-GPU
net of seed 004 §3.3 had 96/256 filters in its first layers and 60M parameters.
The smallest input is 63x63 (the last max pooling needs a 3x3 map).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.models.base import ZooModel, backbone_head, check_top_options
from cnnlab.models.registry import TorchvisionMap, register


def _rename(key: str) -> str:
    # torchvision: features.N / classifier.N; ours: features.N / head.classifier.N
    return "head." + key if key.startswith("classifier.") else key


@register(
    input_shape=(224, 224, 3),
    num_classes=1000,
    params=61_100_840,
    reference="Krizhevsky et al. 2012, NeurIPS; torchvision single-tower variant (arXiv:1404.5997)",
    min_size=63,
    description="AlexNet (torchvision layout)",
    torchvision=TorchvisionMap(_rename),
)
def alexnet(
    *,
    num_classes: int,
    input_shape: tuple[int, int, int],
    include_top: bool,
    dropout: float = 0.5,
    pooling: str | None = None,
) -> ZooModel:
    check_top_options(include_top, pooling)
    channels = input_shape[2]
    # Indices match torchvision's nn.Sequential so its weights load by name.
    features = nn.Sequential(
        nn.Conv2d(channels, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )
    if not include_top:
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
                nn.Linear(4096, num_classes),
            ),
        )
    )
    return ZooModel(features, head, num_features=256)
