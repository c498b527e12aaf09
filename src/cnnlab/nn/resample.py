"""Upsampling: Keras UpSampling1D/2D (nearest, bilinear) and bed-of-nails (the slides).

Input channels-first. ``size`` is the integer factor per spatial axis; output
``(H*sH, W*sW)``. Keras 'bilinear' resizes with half-pixel centres and no
antialiasing, which is torch's ``align_corners=False``.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.nn.errors import one_of


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class UpSampling2d(nn.Upsample):
    """Keras UpSampling2D: repeat rows and columns ('nearest') or interpolate ('bilinear')."""

    _cnnlab_atomic = True
    INTERPOLATIONS = ("nearest", "bilinear")

    def __init__(self, size: int | tuple[int, int] = 2, interpolation: str = "nearest") -> None:
        if interpolation not in self.INTERPOLATIONS:
            raise one_of(type(self).__name__, "interpolation", interpolation, self.INTERPOLATIONS)
        factors = _pair(size)
        super().__init__(scale_factor=tuple(float(f) for f in factors), mode=interpolation, align_corners=False if interpolation == "bilinear" else None)
        self.size_factors = factors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            # Exact repetition, as Keras does; independent of float scale rounding.
            return x.repeat_interleave(self.size_factors[0], dim=-2).repeat_interleave(self.size_factors[1], dim=-1)
        return super().forward(x)


class UpSampling1d(nn.Module):
    """Keras UpSampling1D on (N, C, L): each step repeated ``size`` times -> (N, C, L*size)."""

    _cnnlab_atomic = True

    def __init__(self, size: int = 2) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(self.size, dim=-1)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class BedOfNailsUpsample(nn.Module):
    """Bed-of-nails upsampling: each value lands at the top-left of its ``sH x sW`` cell, zeros elsewhere.

    (N, C, H, W) -> (N, C, H*sH, W*sW) with ``y[..., i*sH, j*sW] = x[..., i, j]``.
    No parameters; it is the transpose of strided sub-sampling.
    """

    _cnnlab_atomic = True

    def __init__(self, size: int | tuple[int, int] = 2) -> None:
        super().__init__()
        self.size = _pair(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh, sw = self.size
        n, c, h, w = x.shape
        y = x.new_zeros((n, c, h, sh, w, sw))
        y[:, :, :, 0, :, 0] = x
        return y.reshape(n, c, h * sh, w * sw)

    def extra_repr(self) -> str:
        return f"size={self.size}"


