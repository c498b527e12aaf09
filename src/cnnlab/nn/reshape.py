"""Shape layers with Keras's channels-last meaning on channels-first tensors.

cnnlab tensors are channels-first: a Keras (H, W, C) tensor is held as
(N, C, H, W), a Keras (L, C) tensor as (N, C, L), a vector (F,) as (N, F).
Flatten and Reshape order the values as Keras does (channels last), so that
Dense weights imported from Keras line up.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, *spatial) -> (N, *spatial, C); vectors unchanged."""
    return x.movedim(1, -1) if x.dim() > 2 else x


def to_channels_first(x: torch.Tensor) -> torch.Tensor:
    """(N, *spatial, C) -> (N, C, *spatial); vectors unchanged."""
    return x.movedim(-1, 1) if x.dim() > 2 else x


class Flatten(nn.Flatten):
    """Keras Flatten: (N, C, H, W) -> (N, H*W*C) in channels-last order."""

    _cnnlab_atomic = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return to_channels_last(x).flatten(1)


class Reshape(nn.Module):
    """Keras Reshape(target_shape): target is channels-last without the batch; one entry may be -1."""

    _cnnlab_atomic = True

    def __init__(self, target_shape: Sequence[int]) -> None:
        super().__init__()
        self.target_shape = tuple(int(v) for v in target_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = to_channels_last(x).reshape(x.shape[0], *self.target_shape)
        return to_channels_first(y)

    def extra_repr(self) -> str:
        return f"target_shape={self.target_shape}"


class ZeroPadding2d(nn.ZeroPad2d):
    """Keras ZeroPadding2D(((top, bottom), (left, right))) on (N, C, H, W)."""

    _cnnlab_atomic = True

    def __init__(self, padding: tuple[tuple[int, int], tuple[int, int]]) -> None:
        (top, bottom), (left, right) = padding
        super().__init__((left, right, top, bottom))


class ZeroPadding1d(nn.ZeroPad1d):
    """Keras ZeroPadding1D((left, right)) on (N, C, L)."""

    _cnnlab_atomic = True

    def __init__(self, padding: tuple[int, int]) -> None:
        super().__init__(tuple(padding))


class Cropping2d(nn.Module):
    """Keras Cropping2D(((top, bottom), (left, right))) on (N, C, H, W)."""

    _cnnlab_atomic = True

    def __init__(self, cropping: tuple[tuple[int, int], tuple[int, int]]) -> None:
        super().__init__()
        self.cropping = (tuple(cropping[0]), tuple(cropping[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = self.cropping
        return F.pad(x, (-left, -right, -top, -bottom))

    def extra_repr(self) -> str:
        return f"cropping={self.cropping}"


class Cropping1d(nn.Module):
    """Keras Cropping1D((left, right)) on (N, C, L)."""

    _cnnlab_atomic = True

    def __init__(self, cropping: tuple[int, int]) -> None:
        super().__init__()
        self.cropping = tuple(cropping)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (-self.cropping[0], -self.cropping[1]))

    def extra_repr(self) -> str:
        return f"cropping={self.cropping}"
