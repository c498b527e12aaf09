"""Convolutions with Keras padding semantics, in PyTorch layout.

``padding='same'`` pads like Keras / TensorFlow: when the total padding is odd
(even kernel, or stride > 1) the extra row / column goes at the bottom / right.
When the padding does not depend on the input size (stride 1, odd effective
kernel) torch's own symmetric padding is used. Weights keep torch's layout:
Conv ``.weight`` is (out, in/groups, *kernel); ConvTranspose ``.weight`` is
(in, out, *kernel). A Keras kernel (kH, kW, in, out) maps to ours with
``permute(3, 2, 0, 1)``; a Keras transposed kernel (kH, kW, out, in) with
``permute(3, 2, 0, 1)`` as well.

An optional ``activation`` module is applied after the layer, as Keras's
``activation=`` argument does; it is a child module so that ``.weight`` and
``.bias`` stay where torch code expects them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.nn.errors import one_of, sizes
from cnnlab.nn.padding import same_pad_arg, static_same_padding, transpose_crop

_PADDINGS = ("valid", "same")


def _tuple(value: int | tuple[int, ...] | list[int], n: int, layer: str = "Conv", argument: str = "kernel_size") -> tuple[int, ...]:
    return sizes(value, n, layer, argument)


class _KerasConvMixin:
    """Shared 'same' / 'causal' handling for Conv1d and Conv2d."""

    _cnnlab_atomic = True
    keras_padding: str
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    activation: nn.Module | None

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.keras_padding == "same":
            n = len(self.kernel_size)
            return F.pad(x, same_pad_arg(x.shape[-n:], self.kernel_size, self.stride, self.dilation))
        if self.keras_padding == "causal":
            return F.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(self._pad(x))  # type: ignore[misc]
        return self.activation(y) if self.activation is not None else y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", keras_padding={self.keras_padding!r}"  # type: ignore[misc]


def _resolve_padding(padding: str, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...], allowed: tuple[str, ...], layer: str = "Conv") -> tuple[str, tuple[int, ...] | int]:
    """(mode applied in forward, padding handed to torch)."""
    if padding not in allowed:
        raise one_of(layer, "padding", padding, allowed)
    if padding == "same":
        static = static_same_padding(kernel, stride, dilation)
        if static is not None:
            return "static", static
    if padding == "valid":
        return "valid", 0
    return padding, 0


class Conv2d(_KerasConvMixin, nn.Conv2d):
    """2-D convolution, input (N, C, H, W), Keras padding 'valid' or 'same'.

    Output size per axis: 'valid' ``floor((I - D(K-1) - 1)/S) + 1``; 'same' ``ceil(I/S)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str = "valid",
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        activation: nn.Module | None = None,
    ) -> None:
        layer = type(self).__name__
        k, s, d = (_tuple(v, 2, layer, a) for v, a in ((kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation")))
        mode, torch_padding = _resolve_padding(padding, k, s, d, _PADDINGS, layer)
        super().__init__(in_channels, out_channels, k, s, torch_padding, d, groups, bias)
        self.keras_padding = mode
        self.activation = activation


class Conv1d(_KerasConvMixin, nn.Conv1d):
    """1-D convolution, input (N, C, L), Keras padding 'valid', 'same' or 'causal'."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: str = "valid",
        dilation: int | tuple[int] = 1,
        groups: int = 1,
        bias: bool = True,
        activation: nn.Module | None = None,
    ) -> None:
        layer = type(self).__name__
        k, s, d = (_tuple(v, 1, layer, a) for v, a in ((kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation")))
        mode, torch_padding = _resolve_padding(padding, k, s, d, (*_PADDINGS, "causal"), layer)
        super().__init__(in_channels, out_channels, k, s, torch_padding, d, groups, bias)
        self.keras_padding = mode
        self.activation = activation


class ConvTranspose2d(nn.ConvTranspose2d):
    """Transposed 2-D convolution with Keras output sizes.

    Output per axis: 'valid' ``I*S + max(Ke - S, 0)``; 'same' ``I*S``. The full
    transposed output ``(I-1)*S + Ke`` is cropped (or zero-extended when K < S) to that.
    """

    _cnnlab_atomic = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str = "valid",
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        activation: nn.Module | None = None,
    ) -> None:
        if padding not in _PADDINGS:
            raise one_of(type(self).__name__, "padding", padding, _PADDINGS)
        layer = type(self).__name__
        k, s, d = (_tuple(v, 2, layer, a) for v, a in ((kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation")))
        super().__init__(in_channels, out_channels, k, s, 0, 0, 1, bias, d)
        self.keras_padding = padding
        self.activation = activation

    def forward(self, x: torch.Tensor, output_size: Any = None) -> torch.Tensor:
        full = F.conv_transpose2d(x, self.weight, self.bias, self.stride, 0, 0, 1, self.dilation)
        pads: list[int] = []
        for axis in (1, 0):  # F.pad wants the last axis first
            size = x.shape[-2 + axis]
            pads.extend(transpose_crop(size, self.kernel_size[axis], self.stride[axis], self.keras_padding, self.dilation[axis]))
        if self.bias is not None and any(p > 0 for p in pads):
            # Zero-extended positions (kernel < stride) still get the bias, as in TensorFlow.
            bias = self.bias.view(1, -1, 1, 1)
            y = F.pad(full - bias, pads) + bias
        else:
            y = F.pad(full, pads)
        return self.activation(y) if self.activation is not None else y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", keras_padding={self.keras_padding!r}"
