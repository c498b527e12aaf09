"""Parameter counts as Keras reports them.

Keras counts a layer's weights, trainable or not; BatchNormalization's moving
mean and variance are non-trainable weights. PyTorch keeps those as buffers,
so a count over ``parameters()`` alone disagrees with Keras. This module is the
one place that reconciles the two: the summary and the zoo both call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# Buffers that Keras counts as (non-trainable) weights. num_batches_tracked is
# PyTorch bookkeeping with no Keras counterpart.
KERAS_WEIGHT_BUFFERS = frozenset({"running_mean", "running_var", "moving_mean", "moving_variance"})


@dataclass(frozen=True)
class ParamCount:
    trainable: int
    non_trainable: int

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable


def count_params(module: nn.Module, *, recurse: bool = True) -> ParamCount:
    """Count ``module``'s weights the Keras way: (trainable, non-trainable).

    Trainable: parameters with ``requires_grad``. Non-trainable: frozen
    parameters plus the buffers Keras counts as weights (batch-norm moving
    statistics). Shared parameters are counted once.
    """
    trainable = non_trainable = 0
    seen: set[int] = set()
    for param in module.parameters(recurse=recurse):
        if id(param) in seen:
            continue
        seen.add(id(param))
        if param.requires_grad:
            trainable += param.numel()
        else:
            non_trainable += param.numel()
    for name, buffer in module.named_buffers(recurse=recurse):
        if name.rsplit(".", 1)[-1] in KERAS_WEIGHT_BUFFERS and isinstance(buffer, torch.Tensor):
            if id(buffer) not in seen:
                seen.add(id(buffer))
                non_trainable += buffer.numel()
    return ParamCount(trainable, non_trainable)
