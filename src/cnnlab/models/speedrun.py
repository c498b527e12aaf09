"""A fast CIFAR-10 net for GPU speed runs, in the style of Keller Jordan's airbench.

``cifar_speedrun``: a stem, then three groups of
``conv3x3 -> max pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU`` with 64, 256 and
256 filters, a global max pool and a bias-free dense layer whose logits are
scaled by ``logit_scale`` (a fixed temperature: the net trains at a high
learning rate without its logits blowing up).

The stem is either a learned 3x3 conv of ``stem`` filters with BN and GELU
(default), or, with ``whiten=True``, airbench94's frozen patch-whitening conv:
2x2 filters, no padding, ``2 * C * 4`` outputs (24 for RGB) with a bias, then
GELU. Its weights are set from training images by :func:`init_whitening` and
are never trained (``requires_grad=False``); until then they are random.

airbench94's other choices are options too: ``bn_scale=False`` fixes every
BN scale at 1 (only the shift learns), ``dirac=True`` starts each 3x3 conv as
the identity on its first ``c_in`` filters, ``logit_scale=1/9``.

Shapes (N, 3, 32, 32) -> (N, 256, 4, 4) features (3x3 with ``whiten``, whose
stem maps 32 -> 31) -> (N, num_classes) logits.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Unpack

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.blocks import conv_bn_act
from cnnlab.models.registry import register

REFERENCE = "after K. Jordan, airbench (2024), arXiv:2404.00498; conv-BN-GELU 64/256/256 + max pooling"
BN_MOMENTUM = 0.4  # torch convention (airbench's 0.6); fast-moving statistics suit runs of a few hundred steps
WHITEN_KERNEL = 2


def _dirac(conv: nn.Conv2d) -> None:
    """The first c_in filters pass their input through: a deep net that starts near shallow."""
    with torch.no_grad():
        nn.init.dirac_(conv.weight[: min(conv.in_channels, conv.out_channels)])


def _bn(c: int, scale: bool) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(c, momentum=BN_MOMENTUM)
    bn.weight.requires_grad_(scale)  # fixed at 1 when not learned
    return bn


class ConvGroup(nn.Sequential):
    """conv -> max pool 2 -> BN -> GELU -> conv -> BN -> GELU: (N, C, H, W) -> (N, width, H/2, W/2)."""

    def __init__(self, c_in: int, width: int, bn_scale: bool = True, dirac: bool = False) -> None:
        unit = partial(conv_bn_act, kernel_size=3, padding=1, norm=partial(_bn, scale=bn_scale), act=nn.GELU)
        conv1, bn1, gelu1 = unit(c_in, width).values()
        super().__init__(OrderedDict(
            conv1=conv1, pool1=nn.MaxPool2d(2), bn1=bn1, gelu1=gelu1,  # airbench pools before the norm
            **unit(width, width, names=("conv2", "bn2", "gelu2")),
        ))
        if dirac:
            _dirac(self.conv1)
            _dirac(self.conv2)


class ScaledLinear(nn.Linear):
    """A bias-free dense layer whose output is multiplied by ``scale``."""

    def __init__(self, in_features: int, out_features: int, scale: float) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.scale


@register(
    input_shape=(32, 32, 3), num_classes=10, min_size=8, params=1_980_384, trainable=1_978_016, reference=REFERENCE,
    description="fast CIFAR net for GPU speed runs: conv-BN-GELU groups 64/256/256 with max pooling",
)
def cifar_speedrun(
    *,
    widths: tuple[int, int, int] | list[int] = (64, 256, 256),
    stem: int = 32,
    whiten: bool = False,
    bn_scale: bool = True,
    dirac: bool = False,
    logit_scale: float = 1 / 8,
    pooling: str | None = None,
    **core: Unpack[CoreArgs],
) -> ZooModel:
    """The stem, three conv groups, global max pooling and the scaled dense layer (see the module's notes)."""
    num_classes, include_top = core["num_classes"], core["include_top"]
    check_top_options(include_top, pooling)
    w1, w2, w3 = (int(w) for w in widths)
    c = core["input_shape"][2]
    names = ("conv", "bn", "gelu")
    if whiten:
        stem = 2 * c * WHITEN_KERNEL**2  # every eigen-direction of a patch, with both signs (GELU is one-sided)
        stem_layers = nn.Sequential(conv_bn_act(c, stem, WHITEN_KERNEL, bias=True, norm=None, act=nn.GELU, names=names))
        nn.init.zeros_(stem_layers.conv.bias)
        stem_layers.conv.weight.requires_grad_(False)
    else:
        norm = partial(_bn, scale=bn_scale)
        stem_layers = nn.Sequential(conv_bn_act(c, stem, 3, padding=1, norm=norm, act=nn.GELU, names=names))
    features = nn.Sequential(OrderedDict(
        stem=stem_layers,
        group1=ConvGroup(stem, w1, bn_scale, dirac),
        group2=ConvGroup(w1, w2, bn_scale, dirac),
        group3=ConvGroup(w2, w3, bn_scale, dirac),
    ))
    if include_top:
        head: nn.Module = nn.Sequential(OrderedDict(
            pool=nn.AdaptiveMaxPool2d(1), flatten=nn.Flatten(), fc=ScaledLinear(w3, num_classes, scale=logit_scale)))
    else:
        head = backbone_head(pooling)
    return ZooModel(features, head, num_features=w3)


def whitening_filters(images: torch.Tensor, kernel_size: int = WHITEN_KERNEL, eps: float = 5e-4) -> torch.Tensor:
    """Filters that whiten the ``kernel_size``² patches of ``images`` (N, C, H, W).

    With ``S = E[p pᵀ]`` the (uncentred) second moment of the flattened patches
    ``p`` (length ``d = C k²``) and ``S = V diag(λ) Vᵀ``, the filters are the rows
    of ``diag(λ + eps)^(-1/2) Vᵀ`` (largest λ first) followed by their negatives:
    shape (2d, C, k, k). Convolving with the first d gives outputs whose second
    moment is ``diag(λ / (λ + eps))`` (the identity when eps = 0).
    """
    if images.ndim != 4:
        raise CnnlabError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}", where="images",
                          fix="pass a batch of network inputs")
    c, k = images.shape[1], kernel_size
    patches = images.double().unfold(2, k, 1).unfold(3, k, 1)  # (N, C, H-k+1, W-k+1, k, k)
    flat = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)  # one row per patch, (C, k, k) order
    second_moment = flat.T @ flat / len(flat)
    eigenvalues, eigenvectors = torch.linalg.eigh(second_moment)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]).reshape(-1, c, k, k)
    return torch.cat([filters, -filters]).float()


def init_whitening(model: nn.Module, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set the frozen whitening stem of a ``cifar_speedrun(whiten=True)`` model from ``images``.

    ``images``: (N, C, H, W) network inputs as the model sees them (after
    preprocessing), e.g. 5000 training images; on any device.
    """
    conv = getattr(getattr(getattr(model, "features", None), "stem", None), "conv", None)
    if not isinstance(conv, nn.Conv2d) or conv.kernel_size != (WHITEN_KERNEL, WHITEN_KERNEL):
        raise CnnlabError("the model has no whitening stem", where="model",
                          fix="create it with create('cifar_speedrun', whiten=True)")
    filters = whitening_filters(images, WHITEN_KERNEL, eps)
    with torch.no_grad():
        conv.weight.copy_(filters.to(conv.weight.device, conv.weight.dtype))
