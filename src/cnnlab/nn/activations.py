"""Activations by Keras name, plus absolute rectification (the lecture notes) and Keras PReLU.

Softmax acts on Keras's last axis, the channels: torch dim 1.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cnnlab.nn.errors import LayerArgumentError, suggestion_text
from cnnlab.ops.limits import brief


class AbsoluteRectification(nn.Module):
    """g(z) = |z|: the rectifier with alpha = -1 (polarity-invariant features, the lecture notes)."""

    _cnnlab_atomic = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs()


class PReLU(nn.Module):
    """Parametric ReLU: ``max(x, 0) + alpha * min(x, 0)`` with a learned ``alpha``.

    ``alpha_shape`` is in torch layout without the batch: ``(C, 1, 1)`` learns one
    alpha per channel (He et al.), ``(C, H, W)`` one per unit (Keras's default,
    ``shared_axes=None``). Stored as ``.weight`` like ``torch.nn.PReLU``.
    """

    _cnnlab_atomic = True

    def __init__(self, alpha_shape: Sequence[int], init: float = 0.25) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full(tuple(alpha_shape), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, self.weight * x)


class Softmax(nn.Softmax):
    """Softmax over Keras's last axis (channels, torch dim 1) unless another dim is given."""

    _cnnlab_atomic = True

    def __init__(self, dim: int = 1) -> None:
        super().__init__(dim=dim)


class KerasReLU(nn.Module):
    """Keras ReLU layer: ``max_value`` cap, ``negative_slope`` below ``threshold``."""

    _cnnlab_atomic = True

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0) -> None:
        super().__init__()
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold))
        return y.clamp(max=self.max_value) if self.max_value is not None else y


def _leaky(negative_slope: float = 0.2, alpha: float | None = None) -> nn.Module:
    # Keras 3 calls it negative_slope (default 0.2 for the function); Keras 2 and the notes say alpha.
    return nn.LeakyReLU(alpha if alpha is not None else negative_slope)


# name -> factory(**options). 'prelu' needs the channel count and is built by `activation`.
_FACTORIES: dict[str, Any] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": _leaky,
    "abs": AbsoluteRectification,
    "absolute": AbsoluteRectification,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": nn.Hardsigmoid,
    "tanh": nn.Tanh,
    "softmax": Softmax,
    "log_softmax": lambda: nn.LogSoftmax(dim=1),
    "elu": lambda alpha=1.0: nn.ELU(alpha),
    "selu": nn.SELU,
    "gelu": lambda approximate=False: nn.GELU("tanh" if approximate else "none"),
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
}

ACTIVATIONS: tuple[str, ...] = (*_FACTORIES, "prelu")


def activation_options(name: str) -> dict[str, Any]:
    """The options an activation takes, with their defaults: ``{"negative_slope": 0.2, "alpha": None}`` for leaky_relu.

    Read from the factory's signature, so the list cannot drift from what is
    passed on; torch's ``inplace`` is not an option (it would change the
    caller's tensor).
    """
    key = str(name).lower()
    if key == "prelu":
        return {"init": 0.25}
    if key not in _FACTORIES:
        raise LayerArgumentError("activation", "name", f"unknown activation {brief(name)}", suggestion_text(name, ACTIVATIONS))
    try:
        parameters = inspect.signature(_FACTORIES[key]).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: no options
        return {}
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in parameters
        if p.name != "inplace" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def check_activation_options(name: str, options: dict[str, Any]) -> None:
    """Refuse an option ``name`` does not take, or a value of the wrong kind, naming the option."""
    allowed = activation_options(name)
    for option, value in options.items():
        if option not in allowed:
            fix = suggestion_text(option, tuple(allowed)) if allowed else "remove the options: it takes none"
            raise LayerArgumentError(f"activation {name!r}", option, f"{name} has no option {option!r}", fix)
        default = allowed[option]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise LayerArgumentError(f"activation {name!r}", option, f"must be true or false, got {brief(value)}", f"write {option}: true or {option}: false")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise LayerArgumentError(f"activation {name!r}", option, f"must be a finite number, got {brief(value)}", f"write e.g. {option}: {default if default is not None else 0.1}")


def activation(name: str | None, channels: int | None = None, rank: int = 2, **options: Any) -> nn.Module:
    """The module for a Keras activation name (``None`` -> identity).

    ``prelu`` learns one alpha per channel (initialised to 0.25) and needs
    ``channels`` and the tensor ``rank`` without the batch (1 for vectors,
    3 for images).
    """
    key = "linear" if name is None else str(name).lower()
    check_activation_options(key, options)
    if key == "prelu":
        if channels is None:
            raise LayerArgumentError("activation 'prelu'", "channels", "prelu needs the channel count", "pass channels=C")
        return PReLU((channels,) + (1,) * (rank - 1), init=options.get("init", 0.25))
    return _FACTORIES[key](**options)
