"""Keras initialisers applied to torch-layout weights.

Fans follow Keras: for a kernel, ``fan_in = in/groups * prod(kernel)`` and
``fan_out = out * prod(kernel)``; torch's layouts (out, in, *k), Linear
(out, in) and ConvTranspose (in, out, *k) give the same numbers with
``fan_in = size(1) * rf`` and ``fan_out = size(0) * rf``. A vector has
``fan_in = fan_out = n``. Keras's "normal" variance-scaling initialisers draw
from a normal truncated at two standard deviations, rescaled by 1/0.8796 so the
variance is the intended one.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from cnnlab.nn.errors import LayerArgumentError, suggestion_text
from cnnlab.ops.limits import brief

# Keras: stddev of a N(0, 1) truncated to [-2, 2] is 0.87962566103423978.
_TRUNCATION_STD = 0.87962566103423978

INITIALIZERS: dict[str, dict[str, Any]] = {
    # name -> Keras defaults of its options
    "glorot_uniform": {},
    "glorot_normal": {},
    "he_uniform": {},
    "he_normal": {},
    "lecun_uniform": {},
    "lecun_normal": {},
    "random_normal": {"mean": 0.0, "stddev": 0.05},
    "random_uniform": {"minval": -0.05, "maxval": 0.05},
    "truncated_normal": {"mean": 0.0, "stddev": 0.05},
    "zeros": {},
    "ones": {},
    "constant": {"value": 0.0},
    "orthogonal": {"gain": 1.0},
}
ALIASES = {"xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal", "kaiming_uniform": "he_uniform", "kaiming_normal": "he_normal", "normal": "random_normal", "uniform": "random_uniform"}

# (scale, fan mode) of the variance-scaling family.
_VARIANCE_SCALING = {
    "glorot": (1.0, "fan_avg"),
    "he": (2.0, "fan_in"),
    "lecun": (1.0, "fan_in"),
}


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a torch-layout weight, equal to Keras's for the same kernel."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def canonical(name: str) -> str:
    """Lower-case Keras name, with the torch aliases (xavier, kaiming) mapped to it."""
    key = name.lower()
    return ALIASES.get(key, key)


@torch.no_grad()
def initialize(tensor: torch.Tensor, name: str, generator: torch.Generator | None = None, **options: Any) -> torch.Tensor:
    """Fill ``tensor`` in place with the Keras initialiser ``name`` (options as Keras's)."""
    key = canonical(name)
    if key not in INITIALIZERS:
        raise LayerArgumentError("initialize", "name", f"unknown initializer {brief(name)}", suggestion_text(name, (*INITIALIZERS, *ALIASES)))
    opts = {**INITIALIZERS[key], **options}
    family = key.split("_")[0]
    if family in _VARIANCE_SCALING:
        scale, mode = _VARIANCE_SCALING[family]
        fan_in, fan_out = fans(tuple(tensor.shape))
        n = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        if key.endswith("uniform"):
            limit = math.sqrt(3.0 * variance)
            return tensor.uniform_(-limit, limit, generator=generator)
        std = math.sqrt(variance) / _TRUNCATION_STD
        return torch.nn.init.trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std, generator=generator)
    if key == "random_normal":
        return tensor.normal_(opts["mean"], opts["stddev"], generator=generator)
    if key == "random_uniform":
        return tensor.uniform_(opts["minval"], opts["maxval"], generator=generator)
    if key == "truncated_normal":
        mean, std = opts["mean"], opts["stddev"]
        return torch.nn.init.trunc_normal_(tensor, mean, std, mean - 2 * std, mean + 2 * std, generator=generator)
    if key == "zeros":
        return tensor.zero_()
    if key == "ones":
        return tensor.fill_(1.0)
    if key == "constant":
        return tensor.fill_(float(opts["value"]))
    # orthogonal
    return torch.nn.init.orthogonal_(tensor, gain=opts["gain"], generator=generator)
