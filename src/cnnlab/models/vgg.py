"""VGG-11/13/16/19 (Simonyan & Zisserman 2014, configurations A, B, D, E), with
and without batch normalisation, in torchvision's layout.

Features: stacks of 3x3 'same' convolutions (+ batch norm) + ReLU, each stack
closed by a 2x2 max pooling: 224 -> 7 after five stacks (32 -> 1). The head
pools adaptively to 7x7, so any input from 32x32 up works with the same
weights: flatten (25,088), 4096, dropout, 4096, dropout, classes.
VGG16 has 138,357,544 parameters and VGG19 143,667,240 (Keras and torchvision agree).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.models.base import ZooModel, backbone_head, check_top_options
from cnnlab.models.registry import TorchvisionMap, register
from cnnlab.nn.core import BatchNorm

M = "M"  # a 2x2 max pooling in a configuration
CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "vgg13": [64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M],
    "vgg16": [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M],
    "vgg19": [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M],
}
BN_EPS = 1e-5  # torchvision's VGG-BN, whose weights load by name
REFERENCE = "Simonyan & Zisserman 2014, arXiv:1409.1556"


def _rename(key: str) -> str:
    return "head." + key if key.startswith("classifier.") else key


TORCHVISION = TorchvisionMap(_rename)


def _features(config: list[int | str], in_channels: int, batch_norm: bool) -> nn.Sequential:
    # Flat nn.Sequential so the indices equal torchvision's (features.0.weight ...).
    layers: list[nn.Module] = []
    for item in config:
        if item == M:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        assert isinstance(item, int)
        layers.append(nn.Conv2d(in_channels, item, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(BatchNorm(item, epsilon=BN_EPS))
        layers.append(nn.ReLU())
        in_channels = item
    return nn.Sequential(*layers)


def _init(model: nn.Module) -> None:
    # torchvision's initialisation.
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


def _vgg(
    depth: str,
    *,
    num_classes: int,
    input_shape: tuple[int, int, int],
    include_top: bool,
    batch_norm: bool,
    dropout: float,
    pooling: str | None,
) -> ZooModel:
    check_top_options(include_top, pooling)
    features = _features(CONFIGS[depth], input_shape[2], batch_norm)
    if include_top:
        head: nn.Module = nn.Sequential(
            OrderedDict(
                avgpool=nn.AdaptiveAvgPool2d((7, 7)),
                flatten=nn.Flatten(),
                classifier=nn.Sequential(
                    nn.Linear(512 * 7 * 7, 4096),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                    nn.Linear(4096, 4096),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                    nn.Linear(4096, num_classes),
                ),
            )
        )
    else:
        head = backbone_head(pooling)
    model = ZooModel(features, head, num_features=512)
    _init(model)
    return model


def _make(depth: str, batch_norm: bool, params: int, trainable: int | None = None) -> None:
    name = depth + ("_bn" if batch_norm else "")
    label = depth.upper().replace("VGG", "VGG-") + (" with batch norm" if batch_norm else "")

    @register(
        name=name,
        input_shape=(224, 224, 3),
        num_classes=1000,
        params=params,
        trainable=trainable,
        reference=REFERENCE,
        min_size=32,
        description=label,
        torchvision=TORCHVISION,
    )
    def build(
        *,
        num_classes: int,
        input_shape: tuple[int, int, int],
        include_top: bool,
        dropout: float = 0.5,
        pooling: str | None = None,
    ) -> ZooModel:
        return _vgg(
            depth,
            num_classes=num_classes,
            input_shape=input_shape,
            include_top=include_top,
            batch_norm=batch_norm,
            dropout=dropout,
            pooling=pooling,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{label}: {REFERENCE}."


# Counts with 1000 classes; batch-norm variants add 4 weights per conv channel,
# 2 of them (moving mean and variance) non-trainable.
_make("vgg11", False, 132_863_336)
_make("vgg13", False, 133_047_848)
_make("vgg16", False, 138_357_544)
_make("vgg19", False, 143_667_240)
_make("vgg11", True, 132_874_344, 132_868_840)
_make("vgg13", True, 133_059_624, 133_053_736)
_make("vgg16", True, 138_374_440, 138_365_992)
_make("vgg19", True, 143_689_256, 143_678_248)
