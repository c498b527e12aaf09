"""Dense, batch normalisation and the merge layers, with Keras's meaning.

Tensors are channels-first; Keras's last axis (the channels) is torch's dim 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.nn.errors import LayerArgumentError


class Dense(nn.Linear):
    """Keras Dense: acts on the last Keras axis (the channels), for any rank.

    (N, F) -> (N, units); (N, C, H, W) -> (N, units, H, W), as Keras maps
    (H, W, C) -> (H, W, units). ``.weight`` is (units, in) = Keras kernel transposed.
    """

    _cnnlab_atomic = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: nn.Module | None = None) -> None:
        super().__init__(in_features, out_features, bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() > 2:
            y = super().forward(x.movedim(1, -1)).movedim(-1, 1)
        else:
            y = super().forward(x)
        return self.activation(y) if self.activation is not None else y


class BatchNorm(nn.BatchNorm2d):
    """Keras BatchNormalization over the channels of a tensor of any rank >= 2.

    Keras defaults: ``momentum=0.99`` (torch's momentum is ``1 - 0.99``),
    ``epsilon=1e-3``; ``center`` / ``scale`` switch beta (``.bias``) / gamma
    (``.weight``) off. With ``trainable = False`` the layer runs in inference
    mode (moving statistics, no updates), as Keras 3 does for a frozen
    BatchNormalization. Moving mean / variance are buffers that
    :func:`cnnlab.nn.params.count_params` counts as non-trainable weights.
    Note: torch updates the moving variance with the unbiased batch variance,
    Keras with the biased one; they differ by a factor n/(n-1) per update.
    """

    _cnnlab_atomic = True

    def __init__(self, num_features: int, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True, scale: bool = True) -> None:
        super().__init__(num_features, eps=epsilon, momentum=1.0 - momentum, affine=True)
        if not scale:
            self.register_parameter("weight", None)
        if not center:
            self.register_parameter("bias", None)
        self.trainable = True

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise LayerArgumentError("BatchNormalization", "input", f"expected a tensor with a batch and a channel axis, got shape {tuple(input.shape)}", "pass a (N, C, ...) tensor")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        use_batch_stats = self.training and self.trainable
        if use_batch_stats:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch_stats, self.momentum, self.eps)


def keras_axis_to_torch(axis: int, rank: int) -> int:
    """Keras axis (batch = 0, channels last) of a rank-``rank`` tensor -> torch dim (channels = 1)."""
    if axis < 0:
        axis += rank
    if axis == 0 or rank <= 2:
        return axis
    return 1 if axis == rank - 1 else axis + 1


class _Merge(nn.Module):
    """Element-wise merge of same-shaped tensors: ``forward(*xs)``."""

    _cnnlab_atomic = True

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
            xs = tuple(xs[0])
        out = xs[0]
        for x in xs[1:]:
            out = self.combine(out, x)
        return self.finish(out, len(xs))

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def finish(self, out: torch.Tensor, n: int) -> torch.Tensor:
        return out


class Add(_Merge):
    """Keras Add: sum of the inputs (residual connections)."""

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class Subtract(_Merge):
    """Keras Subtract: first input minus the second."""

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a - b


class Multiply(_Merge):
    """Keras Multiply: element-wise product."""

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class Average(Add):
    """Keras Average: element-wise mean."""

    def finish(self, out: torch.Tensor, n: int) -> torch.Tensor:
        return out / n


class Maximum(_Merge):
    """Keras Maximum: element-wise maximum."""

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.maximum(a, b)


class Minimum(_Merge):
    """Keras Minimum: element-wise minimum."""

    def combine(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.minimum(a, b)


class Concatenate(nn.Module):
    """Keras Concatenate(axis=-1): joins along a Keras axis; -1 (channels) is torch dim 1."""

    _cnnlab_atomic = True

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
            xs = tuple(xs[0])
        return torch.cat(xs, dim=keras_axis_to_torch(self.axis, xs[0].dim()))

    def extra_repr(self) -> str:
        return f"axis={self.axis}"
