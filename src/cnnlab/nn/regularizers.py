"""Keras weight regularisers: l1, l2, l1_l2, attached to a layer's parameters.

Keras ``l2(0.01)`` adds ``0.01 * sum(w**2)`` to the loss (no 1/2); ``l1(0.01)``
adds ``0.01 * sum(|w|)``. A layer carries them in ``module.keras_regularizers``
(parameter name -> Regularizer); :func:`penalty` sums them for a whole model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ATTRIBUTE = "keras_regularizers"


@dataclass(frozen=True)
class Regularizer:
    """``l1 * sum(|w|) + l2 * sum(w**2)``."""

    l1: float = 0.0
    l2: float = 0.0

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        out = weight.new_zeros(())
        if self.l1:
            out = out + self.l1 * weight.abs().sum()
        if self.l2:
            out = out + self.l2 * weight.square().sum()
        return out


def attach(module: nn.Module, parameter: str, regularizer: Regularizer) -> None:
    """Declare that ``module.<parameter>`` is penalised by ``regularizer``."""
    table = dict(getattr(module, ATTRIBUTE, {}))
    table[parameter] = regularizer
    setattr(module, ATTRIBUTE, table)


def penalty(model: nn.Module) -> torch.Tensor:
    """Sum of every declared penalty in ``model`` (a 0-d tensor; 0 when none)."""
    total: torch.Tensor | None = None
    for module in model.modules():
        for name, regularizer in getattr(module, ATTRIBUTE, {}).items():
            weight = getattr(module, name, None)
            if weight is None:
                continue
            term = regularizer(weight)
            total = term if total is None else total + term
    if total is None:
        first = next(model.parameters(), None)
        return torch.zeros((), device=first.device if first is not None else None)
    return total
