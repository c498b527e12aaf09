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

Training: the zoo's recipe for it (``LENET5_RECIPE``, what `cnnlab train DATA --model lenet5`
fills in where the user leaves settings unset) keeps these layers and counts and scales
the RBF logits by 0.05 (``logit_scale``, a softmax temperature that changes no prediction).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Unpack

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.registry import Recipe, register
from cnnlab.nn.lenet import LENET5_C3_TABLE, EuclideanRBF, PartialConv2d, ScaledTanh, Subsampling

FIELD = 32  # the paper's input plane
RBF_LOGIT_SCALE = 0.05  # the training recipe's inverse temperature on the RBF logits (see LENET5_RECIPE)


class ScaledRBF(EuclideanRBF):
    """:class:`EuclideanRBF` times a fixed positive ``scale``: y_k = -scale ||x - c_k||^2 (same parameters).

    Computed in float32 even under bf16 autocast: the distances are differences of
    sums in the hundreds (||x||^2 - 2 x.c + ||c||^2), and bf16's 8 bits of mantissa
    would round them by about 1, as much as the margins the softmax learns from.
    """

    def __init__(self, in_features: int, classes: int, scale: float = 1.0) -> None:
        super().__init__(in_features, classes)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = super().forward(x.float())
        return out if self.scale == 1.0 else out * self.scale

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale:g}"


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


# The zoo's default training recipe for LeNet-5 (what `cnnlab train DATA --model lenet5` fills in
# where the user leaves a setting unset). The paper trained the RBF output with its own criterion
# and a stochastic diagonal Levenberg-Marquardt optimiser, 20 passes; with softmax cross-entropy
# the RBF logits -||x - c||^2 (differences in the hundreds) saturate it: Adam 1e-3 constant on raw
# [0, 1] pixels ends at 97.2 % after 10 epochs, SGD with momentum at lr 0.05 diverges. An inverse
# temperature on the logits, the paper's input scaling (mean 0, variance about 1) and SGD with
# Nesterov momentum on a one-cycle schedule train the unchanged architecture as fast as a dense
# 84 -> 10 output (probes: 2 epochs of the 60,000 digits, 98.83 % test accuracy against 98.85 %;
# LeCun et al. 1998 report 0.95 % test error without distortions).
LENET5_RECIPE = Recipe(
    settings={
        "model_options": {"output": "rbf", "logit_scale": RBF_LOGIT_SCALE},
        "data": {"standardize": True},
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
        "schedule": {"name": "onecycle"},
        "epochs": 10,
        "batch_size": 32,
    },
    summary=f"SGD lr 0.05 Nesterov momentum 0.9, one-cycle schedule, 10 epochs of batch 32, inputs standardised "
            f"(mean 0, variance 1, as the paper scales them), RBF logits times {RBF_LOGIT_SCALE:g} "
            f"(logit_scale: a softmax temperature; the paper's layers and 60,000 parameters unchanged)",
)


@register(
    input_shape=(32, 32, 1), num_classes=10, min_size=28, params=60_840, trainable=60_000, recipe=LENET5_RECIPE,
    reference="LeCun et al. 1998, Proc. IEEE 86(11); the lecture notes' LeNet-5 table (§3.1)",
    description="LeNet-5 as published: trainable subsampling, C3 partial connections, RBF output",
)
def lenet5(*, output: str = "rbf", logit_scale: float = 1.0, pooling: str | None = None,
           **core: Unpack[CoreArgs]) -> ZooModel:
    """LeNet-5. ``output='rbf'``: the paper's fixed Euclidean RBF units (logits are
    negated squared distances, times ``logit_scale``: y_k = -s ||x - c_k||^2);
    ``output='dense'``: a trainable 84 -> classes layer.

    ``logit_scale`` s > 0 changes no parameter and no prediction (the nearest centre
    wins whatever s): it is the softmax's inverse temperature. At the paper's s = 1
    the logits differ by hundreds and softmax cross-entropy saturates (the paper
    trained with its own criterion and second-order optimiser); the zoo's training
    recipe uses s = ``RBF_LOGIT_SCALE`` (see ``LENET5_RECIPE``)."""
    num_classes, include_top = core["num_classes"], core["include_top"]
    check_top_options(include_top, pooling)
    if output == "dense" and logit_scale != 1.0:
        raise CnnlabError(
            f"logit_scale {logit_scale!r} scales the RBF output and output is 'dense'",
            where="lenet5: option 'logit_scale'", fix="leave logit_scale out with output='dense' (or use output='rbf')",
        )
    features, (out_h, out_w) = _lenet5_features(core["input_shape"])
    if not include_top:
        return ZooModel(features, backbone_head(pooling), num_features=120)
    if output == "rbf":
        final: nn.Module = ScaledRBF(84, num_classes, logit_scale)
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
