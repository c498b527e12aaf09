"""Discrete convolution and cross-correlation of images (2-D) and signals (1-D).

Cross-correlation slides the kernel as it is (what CNN "convolution" layers and
OpenCV's ``filter2D`` compute)::

    corr(X, K)[i, j] = sum_{m, n} K[m, n] * Xp[i*S + m*D, j*S + n*D]

Convolution flips the kernel in both axes first (the textbook definition, and
SciPy's ``convolve2d``)::

    conv(X, K)[i, j] = sum_{m, n} K[m, n] * Xp[i*S - m*D + c_h, j*S - n*D + c_w]
                     = corr(X, K[::-1, ::-1])[i, j]

where Xp is X padded as asked, S the stride, D the dilation and c the offset that
makes the flipped kernel line up. For a symmetric kernel (box, Gaussian) the two
are the same; for Sobel they differ in sign.

Both accept gray (H, W) and colour (H, W, C) images (each channel filtered alone
with the same kernel) and a 2-D kernel. NumPy in gives NumPy out, torch in gives
torch out (same device, gradients flow). Float64 input is computed in float64;
anything else in float32. The work is one ``torch.nn.functional.conv2d`` call.

Padding (per axis, see :func:`cnnlab.ops.arithmetic.output_size` for sizes):

- ``"valid"``: none, the kernel stays inside the image;
- ``"same"``: E - 1 pixels in total (E = D(K-1)+1), the extra one before for even
  E (the anchor of OpenCV and SciPy), so the output has ceil(I / S) pixels and
  stride S keeps every S-th pixel of the stride-1 result;
- ``"full"``: E - 1 on each side, every partial overlap;
- an int N on every side, or (top, bottom, left, right) (1-D: (before, after)).

Border modes say what the padding holds: ``zeros``; ``reflect`` (mirror without
repeating the edge pixel, ``dcb|abcd|cba``, OpenCV BORDER_REFLECT_101);
``symmetric`` (mirror repeating it, ``cba|abcd|dcb``, OpenCV BORDER_REFLECT);
``replicate`` (``aaa|abcd|ddd``); ``wrap`` (``bcd|abcd|abc``, periodic).
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.ops.arithmetic import effective_kernel_size, output_size, same_padding
from cnnlab.ops.limits import MAX_SIZE, check_bytes, check_size

__all__ = ["BORDERS", "convolve1d", "convolve2d", "correlate1d", "correlate2d", "resolve_padding"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)

# Our border names -> numpy.pad modes (used to build index maps, see _pad_axis).
BORDERS: dict[str, str] = {
    "zeros": "constant",
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "edge",
    "wrap": "wrap",
}
_BORDER_ALIASES = {
    "constant": "zeros",
    "zero": "zeros",
    "reflect101": "reflect",
    "reflect_101": "reflect",
    "edge": "replicate",
    "circular": "wrap",
}
_PADDING_MODES = ("valid", "same", "full")


def correlate2d(
    image: Array,
    kernel: Any,
    padding: str | int | Sequence[int] = "same",
    border: str = "reflect",
    stride: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
) -> Array:
    """Cross-correlation, kernel not flipped: out[i,j] = sum K[m,n] Xp[iS + mD, jS + nD].

    ``image`` is (H, W) or (H, W, C); ``kernel`` (kh, kw). With the defaults
    (padding ``same``, border ``reflect``) this is OpenCV's
    ``cv2.filter2D(image, -1, kernel)``. Output (per axis)
    O = floor((I + P_before + P_after - D(K-1) - 1) / S) + 1.
    """
    return _filter(image, kernel, padding, border, stride, dilation, flip=False, name="correlate2d")


def convolve2d(
    image: Array,
    kernel: Any,
    padding: str | int | Sequence[int] = "same",
    border: str = "reflect",
    stride: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
) -> Array:
    """Convolution, kernel flipped in both axes: conv(X, K) = corr(X, K[::-1, ::-1]).

    Same arguments and output size as :func:`correlate2d`. With border ``zeros``
    (or ``wrap`` / ``symmetric``) and padding ``full`` / ``same`` / ``valid`` this
    is ``scipy.signal.convolve2d(image, kernel, mode, boundary='fill' / 'wrap' / 'symm')``.
    """
    return _filter(image, kernel, padding, border, stride, dilation, flip=True, name="convolve2d")


def correlate1d(
    signal: Array,
    kernel: Any,
    padding: str | int | Sequence[int] = "same",
    border: str = "reflect",
    stride: int = 1,
    dilation: int = 1,
) -> Array:
    """1-D cross-correlation of a signal (L,): out[i] = sum_m k[m] xp[iS + mD].

    Padding ``valid`` / ``same`` / ``full`` / N / (before, after); O as in 2-D.
    """
    return _filter1d(signal, kernel, padding, border, stride, dilation, flip=False, name="correlate1d")


def convolve1d(
    signal: Array,
    kernel: Any,
    padding: str | int | Sequence[int] = "same",
    border: str = "reflect",
    stride: int = 1,
    dilation: int = 1,
) -> Array:
    """1-D convolution, kernel flipped: (x * k)[n] = sum_m x[m] k[n - m] = corr(x, k[::-1]).

    With padding ``full`` and border ``zeros`` this is ``numpy.convolve(x, k)``.
    """
    return _filter1d(signal, kernel, padding, border, stride, dilation, flip=True, name="convolve1d")


# --- argument checking -------------------------------------------------------


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _pair(value: Any, name: str, what: str) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1 (stride, dilation)."""
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value, value]
    ints = [_int_or_none(v) for v in values]
    if len(ints) != 2 or any(v is None or v < 1 for v in ints):
        raise CnnlabError(
            f"must be a positive integer or a (rows, columns) pair of them, got {value!r}",
            where=name,
            fix=f"use {name} 1 ({what}) or more, e.g. {name}=2 or {name}=(2, 1)",
        )
    for v in ints:
        check_size(v, MAX_SIZE, where=name, what=name)  # type: ignore[arg-type]
    return (ints[0], ints[1])  # type: ignore[return-value]


def resolve_border(border: str) -> str:
    """Our canonical border name for ``border`` (aliases accepted), or a CnnlabError."""
    key = str(border).lower().replace("-", "_")
    key = _BORDER_ALIASES.get(key, key)
    if key not in BORDERS:
        close = difflib.get_close_matches(str(border), list(BORDERS) + list(_BORDER_ALIASES), n=2)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise CnnlabError(
            f"unknown border mode {border!r}",
            where="border",
            fix=f"{hint}use one of {', '.join(BORDERS)}",
        )
    return key


def resolve_padding(
    padding: str | int | Sequence[int],
    kernel_shape: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixels for a padding mode, an int or a 4-tuple (or (rows, cols))."""
    spans = [effective_kernel_size(k, d) for k, d in zip(kernel_shape, dilation, strict=True)]
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "same":
            (top, bottom), (left, right) = (same_padding(k, d) for k, d in zip(kernel_shape, dilation, strict=True))
            return (top, bottom, left, right)
        if mode == "full":
            return (spans[0] - 1, spans[0] - 1, spans[1] - 1, spans[1] - 1)
        raise CnnlabError(
            f"unknown padding {padding!r}",
            where="padding",
            fix="use 'valid', 'same', 'full', a number of pixels N, or top,bottom,left,right",
        )
    raw = list(padding) if isinstance(padding, Sequence) else [padding]
    ints = [_int_or_none(v) for v in raw]
    values = [-1] if any(v is None for v in ints) else [int(v) for v in ints if v is not None]
    if len(values) == 1:
        values = values * 4
    elif len(values) == 2:
        values = [values[0], values[0], values[1], values[1]]
    if len(values) != 4 or min(values) < 0:
        raise CnnlabError(
            f"must be 'valid', 'same', 'full', N >= 0 or (top, bottom, left, right), got {padding!r}",
            where="padding",
            fix="e.g. padding='same', padding=1 or padding=(1, 1, 2, 2)",
        )
    for v in values:
        check_size(v, MAX_SIZE, where="padding", what="padding")
    return (values[0], values[1], values[2], values[3])


def _as_kernel(kernel: Any, dtype: torch.dtype, device: torch.device, name: str) -> torch.Tensor:
    if isinstance(kernel, torch.Tensor):
        k = kernel.to(device=device, dtype=dtype)
    else:
        try:
            k = torch.as_tensor(np.ascontiguousarray(kernel, dtype=np.float64), dtype=dtype, device=device)
        except (TypeError, ValueError) as error:
            raise CnnlabError(f"is not a numeric array ({error})", where=f"{name} kernel", fix="pass a 2-D array of numbers") from None
    if k.ndim != 2 or k.shape[0] < 1 or k.shape[1] < 1:
        raise CnnlabError(
            f"must be a non-empty 2-D array (kh, kw), got shape {tuple(k.shape)}",
            where=f"{name} kernel",
            fix="pass e.g. [[0, -1, 0], [-1, 5, -1], [0, -1, 0]] or a 1-D kernel to convolve1d",
        )
    if not torch.isfinite(k).all():
        raise CnnlabError("contains NaN or infinity", where=f"{name} kernel", fix="use finite numbers")
    return k


def _as_tensor(data: Any, name: str) -> tuple[torch.Tensor, bool]:
    """The input as a floating tensor, and whether it came as numpy (to convert back)."""
    if isinstance(data, torch.Tensor):
        tensor = data if data.is_floating_point() else data.to(torch.float32)
        return tensor, False
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise CnnlabError(f"must hold numbers, got dtype {array.dtype}", where=f"{name} input", fix="pass a numeric array")
    dtype = np.float64 if array.dtype == np.float64 else np.float32
    return torch.from_numpy(np.ascontiguousarray(array, dtype=dtype)), True


# --- the work ------------------------------------------------------------------


def _pad_axis(x: torch.Tensor, dim: int, before: int, after: int, border: str) -> torch.Tensor:
    """Pad one axis of ``x`` with a non-zero border mode by gathering indices.

    numpy.pad applied to 0..n-1 gives, for every padded position, the source
    index it copies; this works for pads wider than the image (numpy repeats the
    reflection), keeps gradients and runs on any device.
    """
    if before == 0 and after == 0:
        return x
    index = np.pad(np.arange(x.shape[dim]), (before, after), mode=BORDERS[border])  # type: ignore[call-overload]
    return x.index_select(dim, torch.as_tensor(index, device=x.device))


def _filter_nchw(
    x: torch.Tensor,
    k: torch.Tensor,
    pads: tuple[int, int, int, int],
    border: str,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    name: str,
) -> torch.Tensor:
    """Correlate every plane of x (1, C, H, W) with k (kh, kw): pad, then one depthwise conv2d.

    (Depthwise, groups = C, is about twice as fast on CPU as C planes of one channel.)
    """
    top, bottom, left, right = pads
    height, width = x.shape[-2:]
    for axis, (size, ksize, s, before, after, d) in enumerate(
        [(height, k.shape[0], stride[0], top, bottom, dilation[0]), (width, k.shape[1], stride[1], left, right, dilation[1])]
    ):
        try:
            output_size(int(size), int(ksize), s, (before, after), d)
        except CnnlabError as error:
            axis_name = ("height", "width")[axis]
            raise CnnlabError(f"{axis_name}: {error}", where=name) from None
    # The padded planes and the output are allocated below: refuse sizes the machine cannot hold first.
    padded = x.shape[0] * x.shape[1] * (height + top + bottom) * (width + left + right)
    out_pixels = x.shape[0] * x.shape[1] * (height + top + bottom) * (width + left + right) // (stride[0] * stride[1])
    check_bytes(
        (padded + out_pixels) * x.element_size(),
        where=name,
        what=f"padding {top},{bottom},{left},{right} (top,bottom,left,right) around a {height}x{width} image",
        fix="use less padding (e.g. padding 'same') or a smaller kernel / dilation",
    )
    if border == "zeros":
        x = F.pad(x, (left, right, top, bottom))
    else:
        x = _pad_axis(_pad_axis(x, 2, top, bottom, border), 3, left, right, border)
    weight = k[None, None].expand(x.shape[1], 1, -1, -1)
    return F.conv2d(x, weight, stride=stride, dilation=dilation, groups=x.shape[1])


def _filter(
    image: Any,
    kernel: Any,
    padding: Any,
    border: str,
    stride: Any,
    dilation: Any,
    *,
    flip: bool,
    name: str,
) -> Any:
    x, from_numpy = _as_tensor(image, name)
    if x.ndim not in (2, 3) or min(x.shape) < 1:
        raise CnnlabError(
            f"must be a gray (H, W) or colour (H, W, C) image, got shape {tuple(x.shape)}",
            where=f"{name} image",
            fix="pass one image; for 1-D signals use correlate1d / convolve1d",
        )
    k = _as_kernel(kernel, x.dtype, x.device, name)
    if flip:
        k = torch.flip(k, dims=(0, 1))
    strides = _pair(stride, "stride", "every pixel")
    dilations = _pair(dilation, "dilation", "no holes")
    pads = resolve_padding(padding, (k.shape[0], k.shape[1]), dilations)
    border = resolve_border(border)
    planes = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
    out = _filter_nchw(planes, k, pads, border, strides, dilations, name)
    out = out[0, 0] if x.ndim == 2 else out[0].permute(1, 2, 0)
    return out.contiguous().numpy() if from_numpy else out


def _filter1d(
    signal: Any,
    kernel: Any,
    padding: Any,
    border: str,
    stride: Any,
    dilation: Any,
    *,
    flip: bool,
    name: str,
) -> Any:
    x, from_numpy = _as_tensor(signal, name)
    if x.ndim != 1 or x.shape[0] < 1:
        raise CnnlabError(
            f"must be a 1-D signal (L,), got shape {tuple(x.shape)}",
            where=f"{name} signal",
            fix="pass a 1-D array; for images use correlate2d / convolve2d",
        )
    k1 = kernel if isinstance(kernel, torch.Tensor) else np.asarray(kernel, dtype=np.float64)
    if k1.ndim != 1:
        raise CnnlabError(
            f"must be a 1-D array, got shape {tuple(k1.shape)}", where=f"{name} kernel", fix="pass e.g. [1, 2, 1]"
        )
    k = _as_kernel(k1[None, :], x.dtype, x.device, name)
    if flip:
        k = torch.flip(k, dims=(1,))
    s = _pair(stride, "stride", "every sample")[1]
    d = _pair(dilation, "dilation", "no holes")[1]
    if isinstance(padding, str):
        _, _, before, after = resolve_padding(padding, (1, k.shape[1]), (1, d))
    else:
        values = list(padding) if isinstance(padding, Sequence) else [padding, padding]
        if len(values) != 2:
            raise CnnlabError(f"must be 'valid', 'same', 'full', N or (before, after), got {padding!r}", where="padding", fix="e.g. padding=2 or padding=(1, 2)")
        _, _, before, after = resolve_padding([0, 0, *values], (1, k.shape[1]), (1, d))
    out = _filter_nchw(x[None, None, None], k, (0, 0, before, after), resolve_border(border), (1, s), (1, d), name)
    out = out[0, 0, 0]
    return out.contiguous().numpy() if from_numpy else out
