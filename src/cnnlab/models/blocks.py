"""The pieces the zoo is built from: conv -> norm -> activation, the pooled dense top, He init.

Each family names its layers as torchvision does (``conv1`` / ``bn1`` / ``relu`` in
ResNet, ``conv`` / ``bn`` / ``relu`` in GoogLeNet, ``norm1`` / ``relu1`` / ``conv1`` in
DenseNet, plain indices in VGG and AlexNet), so that torchvision's state dicts load
key by key. :func:`conv_bn_act` therefore returns its layers *named*, in order, and
the family decides how they sit in the model:

- nested: ``nn.Sequential(conv_bn_act(...))`` (GoogLeNet's ``BasicConv2d``);
- merged into a parent's names: ``OrderedDict(**conv_bn_act(..., names=("conv1", "bn1", "relu")), maxpool=...)``;
- flat, by index: ``layers += conv_bn_act(...).values()`` (VGG: ``features.0``, ``features.1``, ...);
- as attributes: ``self.conv1, self.bn1 = conv_bn_act(..., act=None).values()`` (ResNet blocks).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from torch import nn

Norm = Callable[[int], nn.Module]  # channels -> a normalisation layer, e.g. partial(BatchNorm, epsilon=1e-5)
Activation = Callable[[], nn.Module]  # e.g. nn.ReLU, nn.GELU


def conv_bn_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    padding: int = 0,
    bias: bool = False,
    norm: Norm | None,
    act: Activation | None = nn.ReLU,
    names: tuple[str, str, str] = ("conv", "bn", "relu"),
    pre_activation: bool = False,
) -> OrderedDict[str, nn.Module]:
    """A 2-D convolution with its normalisation and activation, as named layers in order.

    ``conv -> norm(out_channels) -> act``: the post-activation unit of VGG-BN, ResNet
    and GoogLeNet (Ioffe & Szegedy 2015, arXiv:1502.03167). ``pre_activation=True``:
    ``norm(in_channels) -> act -> conv``, DenseNet's unit (He et al. 2016, "Identity
    mappings in deep residual networks", arXiv:1603.05027). ``norm=None`` or
    ``act=None`` leaves that layer out. ``names`` are the keys of the conv, the norm
    and the activation (in that order whatever the layer order).

    The conv is built first, so a seeded model draws the same initial weights as
    one written out layer by layer.
    """
    conv_name, norm_name, act_name = names
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
    rest: list[tuple[str, nn.Module]] = []
    if norm is not None:
        rest.append((norm_name, norm(in_channels if pre_activation else out_channels)))
    if act is not None:
        rest.append((act_name, act()))
    return OrderedDict([*rest, (conv_name, conv)] if pre_activation else [(conv_name, conv), *rest])


def pooled_classifier(
    width: int, num_classes: int, *, dropout: float | None = None, fc: str = "fc"
) -> nn.Sequential:
    """Global average pooling, flatten, (dropout), dense: (N, width, h, w) -> (N, num_classes).

    The top of ResNet (``fc``), DenseNet (``classifier``) and GoogLeNet (with dropout).
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict(avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten())
    if dropout is not None:
        layers["dropout"] = nn.Dropout(dropout)
    layers[fc] = nn.Linear(width, num_classes)
    return nn.Sequential(layers)


def init_conv_he(model: nn.Module) -> None:
    """He et al. 2015 (arXiv:1502.01852) initialisation of every convolution, as torchvision's ResNet and VGG.

    Weights ~ N(0, 2 / fan_out) with fan_out = out_channels * k * k; biases zero.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
