"""Pooling with Keras semantics, input channels-first: (N, C, L) or (N, C, H, W).

``strides`` default to ``pool_size``. Output size per axis: 'valid'
``floor((I - K)/S) + 1``, 'same' ``ceil(I/S)`` with Keras's padding split (more
at the bottom / right). Under 'same', max pooling never picks a padded value
(padding is -inf) and average pooling averages only the real pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.nn.errors import one_of, sizes
from cnnlab.nn.padding import same_pad_arg, static_same_padding


def _tuple(value: int | tuple[int, ...] | list[int] | None, n: int, layer: str = "Pool", argument: str = "pool_size") -> tuple[int, ...] | None:
    return None if value is None else sizes(value, n, layer, argument)


def _check_padding(padding: str, layer: str = "Pool") -> str:
    if padding not in ("valid", "same"):
        raise one_of(layer, "padding", padding, ("valid", "same"))
    return padding


class _KerasPool:
    _cnnlab_atomic = True
    keras_padding: str
    pool: tuple[int, ...]
    step: tuple[int, ...]

    def _keras_setup(self, pool_size, strides, padding: str, n: int) -> int | tuple[int, ...]:
        """Record Keras's arguments; return the padding torch's pool can do itself.

        Symmetric 'same' padding goes to torch; uneven padding (Keras pads more at
        the bottom / right) is done in ``forward`` through ``_dynamic_pads``.
        """
        layer = type(self).__name__
        self.pool = _tuple(pool_size, n, layer, "pool_size")
        self.step = _tuple(strides, n, layer, "strides") or self.pool
        self.keras_padding = _check_padding(padding, layer)
        static = static_same_padding(self.pool, self.step, (1,) * n) if padding == "same" else (0,) * n
        self._manual = static is None
        return static or 0

    def _dynamic_pads(self, x: torch.Tensor) -> list[int]:
        n = len(self.pool)
        return same_pad_arg(x.shape[-n:], self.pool, self.step, (1,) * n)


class MaxPool2d(_KerasPool, nn.MaxPool2d):
    """Keras MaxPooling2D: ``pool_size`` (2, 2), ``strides`` = pool_size, 'valid' / 'same'."""

    def __init__(self, pool_size: int | tuple[int, int] = 2, strides: int | tuple[int, int] | None = None, padding: str = "valid") -> None:
        static = self._keras_setup(pool_size, strides, padding, 2)
        super().__init__(self.pool, self.step, static)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._manual:
            x = F.pad(x, self._dynamic_pads(x), value=float("-inf"))
        return super().forward(x)


class MaxPool1d(_KerasPool, nn.MaxPool1d):
    """Keras MaxPooling1D on (N, C, L): ``pool_size`` 2, ``strides`` = pool_size."""

    def __init__(self, pool_size: int = 2, strides: int | None = None, padding: str = "valid") -> None:
        static = self._keras_setup(pool_size, strides, padding, 1)
        super().__init__(self.pool, self.step, static)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._manual:
            x = F.pad(x, self._dynamic_pads(x), value=float("-inf"))
        return super().forward(x)


def _real_pixel_average(x: torch.Tensor, pads: list[int], pool: callable) -> torch.Tensor:  # type: ignore[valid-type]
    """Average over real pixels only: pool(padded x) / pool(padded ones)."""
    ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
    return pool(F.pad(x, pads)) / pool(F.pad(ones, pads))


class AvgPool2d(_KerasPool, nn.AvgPool2d):
    """Keras AveragePooling2D: 'same' averages only the real (unpadded) pixels."""

    def __init__(self, pool_size: int | tuple[int, int] = 2, strides: int | tuple[int, int] | None = None, padding: str = "valid") -> None:
        static = self._keras_setup(pool_size, strides, padding, 2)
        super().__init__(self.pool, self.step, static, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._manual:
            return _real_pixel_average(x, self._dynamic_pads(x), lambda t: F.avg_pool2d(t, self.pool, self.step))
        return super().forward(x)


class AvgPool1d(_KerasPool, nn.AvgPool1d):
    """Keras AveragePooling1D on (N, C, L)."""

    def __init__(self, pool_size: int = 2, strides: int | None = None, padding: str = "valid") -> None:
        static = self._keras_setup(pool_size, strides, padding, 1)
        super().__init__(self.pool, self.step, static, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._manual:
            return _real_pixel_average(x, self._dynamic_pads(x), lambda t: F.avg_pool1d(t, self.pool, self.step))
        return super().forward(x)


class GlobalAvgPool(nn.Module):
    """Keras GlobalAveragePooling1D/2D: mean over every axis after the channels.

    (N, C, *spatial) -> (N, C), or (N, C, 1, ..., 1) with ``keepdims``.
    """

    _cnnlab_atomic = True

    def __init__(self, keepdims: bool = False) -> None:
        super().__init__()
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"keepdims={self.keepdims}"


class GlobalMaxPool(GlobalAvgPool):
    """Keras GlobalMaxPooling1D/2D: max over every axis after the channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=tuple(range(2, x.dim())), keepdim=self.keepdims)
