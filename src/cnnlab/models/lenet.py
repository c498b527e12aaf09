"""LeNet-5 as published: LeCun, Bottou, Bengio, Haffner, "Gradient-based learning
applied to document recognition", Proc. IEEE 86(11), 1998.

Layer by layer (32x32x1 input, parameter counts as the lecture notes' LeNet-5 table gives them):

======  =================================================  ===========  ======
layer   what                                               output       params
======  =================================================  ===========  ======
C1      6 convolutions 5x5                                 28x28x6         156
S2      2x2 sum x trainable coefficient + bias, per map    14x14x6          12
C3      16 convolutions 5x5 on the S2 maps of Table I      10x10x16      1,516
S4      as S2                                              5x5x16           32
C5      120 convolutions 5x5 (full connection to S4)       1x1x120      48,120
F6      84 units                                           84           10,164
output  one Euclidean RBF unit per class, fixed centres    10          (840 frozen)
======  =================================================  ===========  ======

Every layer up to F6 is followed by the scaled tanh 1.7159 tanh(2a/3).
Trainable total: 60,000. Inputs smaller than 32x32 (MNIST's 28x28) are zero-padded
to 32x32 around the centre, as the paper placed its digits in a 32x32 field.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Unpack

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.registry import register
from cnnlab.nn.lenet import LENET5_C3_TABLE, EuclideanRBF, PartialConv2d, ScaledTanh, Subsampling

FIELD = 32  # the paper's input plane


def _lenet5_features(input_shape: tuple[int, int, int]) -> tuple[nn.Sequential, tuple[int, int]]:
    height, width, channels = input_shape
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if height < FIELD or width < FIELD:
        pad_h, pad_w = max(FIELD - height, 0), max(FIELD - width, 0)
        layers["pad"] = nn.ZeroPad2d((pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        height, width = max(height, FIELD), max(width, FIELD)
    layers["c1"] = nn.Conv2d(channels, 6, 5)
    layers["c1_act"] = ScaledTanh()
    layers["s2"] = Subsampling(6)
    layers["s2_act"] = ScaledTanh()
    layers["c3"] = PartialConv2d(6, LENET5_C3_TABLE, 5)
    layers["c3_act"] = ScaledTanh()
    layers["s4"] = Subsampling(16)
    layers["s4_act"] = ScaledTanh()
    layers["c5"] = nn.Conv2d(16, 120, 5)
    layers["c5_act"] = ScaledTanh()
    # H -> H-4 (C1) -> /2 (S2) -> -4 (C3) -> /2 (S4) -> -4 (C5)
    out_h = ((height - 4) // 2 - 4) // 2 - 4
    out_w = ((width - 4) // 2 - 4) // 2 - 4
    return nn.Sequential(layers), (out_h, out_w)


@register(
    input_shape=(32, 32, 1), num_classes=10, min_size=28, params=60_840, trainable=60_000,
    reference="LeCun et al. 1998, Proc. IEEE 86(11); the lecture notes' LeNet-5 table (§3.1)",
    description="LeNet-5 as published: trainable subsampling, C3 partial connections, RBF output",
)
def lenet5(*, output: str = "rbf", pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """LeNet-5. ``output='rbf'``: the paper's fixed Euclidean RBF units (logits are
    negated squared distances); ``output='dense'``: a trainable 84 -> classes layer."""
    num_classes, include_top = core["num_classes"], core["include_top"]
    check_top_options(include_top, pooling)
    features, (out_h, out_w) = _lenet5_features(core["input_shape"])
    if not include_top:
        return ZooModel(features, backbone_head(pooling), num_features=120)
    if output == "rbf":
        final: nn.Module = EuclideanRBF(84, num_classes)
    elif output == "dense":
        final = nn.Linear(84, num_classes)
    else:
        raise CnnlabError(
            f"unknown output {output!r}", where="lenet5: output", fix="use 'rbf' (the paper's) or 'dense'"
        )
    head = nn.Sequential(
        OrderedDict(
            flatten=nn.Flatten(),
            f6=nn.Linear(120 * out_h * out_w, 84),
            f6_act=ScaledTanh(),
            output=final,
        )
    )
    return ZooModel(features, head, num_features=120)
