"""Convolution arithmetic: how big is the output, and why.

For one axis, with input size I, kernel size K, stride S, padding P on each side
and dilation D, the kernel spans E = D(K - 1) + 1 input pixels and

    O = floor((I + 2P - D(K - 1) - 1) / S) + 1                      (general)

With D = 1 the numerator is I + 2P - K, which gives the forms of the notes:

    O = 1 + (2P + I - K) / S          the convolution notes, §1.3
    O = (m - k + 2c) / p + 1          the lecture notes (m input, k kernel, c padding, p stride)

The division is a floor: when S does not divide 2P + I - K, the last pixels that
a full step cannot reach are never covered.

Padding may also be asymmetric, (before, after); then 2P becomes before + after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cnnlab.errors import CnnlabError

__all__ = [
    "PaddingSpec",
    "effective_kernel_size",
    "explain_output_size",
    "output_size",
    "same_padding",
]

# What callers may pass as padding for one axis: P on both sides, or (before, after).
PaddingSpec = int | tuple[int, int]


def _positive(value: object, name: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CnnlabError(f"must be a positive integer, got {value!r}", where=name, fix=fix)
    return value


def _pad_pair(padding: object, name: str = "padding") -> tuple[int, int]:
    if isinstance(padding, Sequence) and not isinstance(padding, str) and len(padding) == 2:
        before, after = padding
    else:
        before = after = padding
    for value in (before, after):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CnnlabError(
                f"must be a non-negative integer or a (before, after) pair of them, got {padding!r}",
                where=name,
                fix="use 0, 1, 2 ... pixels (or 'valid' / 'same' / 'full' where a mode is accepted)",
            )
    return before, after


def effective_kernel_size(kernel: int, dilation: int = 1) -> int:
    """E = D(K - 1) + 1: how many input pixels a dilated kernel spans."""
    return dilation * (kernel - 1) + 1


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding that keeps the size at stride 1: total E - 1 pixels.

    For an even span the extra pixel goes before (top / left), so that the anchor
    is the kernel's pixel E // 2, as in OpenCV's ``filter2D`` and SciPy's
    ``convolve2d(mode='same')``. (Keras / TensorFlow put it after; the output
    size is the same.) With stride S the output then has ceil(I / S) pixels.
    """
    total = effective_kernel_size(kernel, dilation) - 1
    return total - total // 2, total // 2


def output_size(I: int, K: int, S: int = 1, P: PaddingSpec = 0, D: int = 1) -> int:  # noqa: E741, N803
    """Output size along one axis: O = floor((I + 2P - D(K - 1) - 1) / S) + 1.

    ``P`` is the padding on each side, or a (before, after) pair (then 2P is
    before + after). Raises :class:`CnnlabError` when the output would be empty,
    naming the arguments and the smallest padding that would fix it.
    """
    I = _positive(I, "input size I", "give the image height or width in pixels (>= 1)")  # noqa: E741
    K = _positive(K, "kernel size K", "use a kernel of at least 1x1")
    S = _positive(S, "stride S", "use a stride of 1 (every pixel) or more")
    D = _positive(D, "dilation D", "use a dilation of 1 (no holes) or more")
    before, after = _pad_pair(P, "padding P")
    span = effective_kernel_size(K, D)
    padded = I + before + after
    if padded < span:
        need = span - I  # total padding that makes the output non-empty
        raise CnnlabError(
            f"the output is empty: the kernel spans D(K-1)+1 = {D}*({K}-1)+1 = {span} pixels "
            f"but the padded input has only I + {before} + {after} = {padded} "
            f"(I={I}, K={K}, S={S}, P={P}, D={D})",
            where="output_size",
            fix=f"pad by at least {math.ceil(need / 2)} per side (or use padding 'same'), "
            f"or use a smaller kernel or dilation",
        )
    return (padded - span) // S + 1


def explain_output_size(
    I: int,  # noqa: E741, N803
    K: int,  # noqa: N803
    S: int = 1,  # noqa: N803
    P: PaddingSpec = 0,  # noqa: N803
    D: int = 1,  # noqa: N803
    *,
    axis: str = "",
) -> str:
    """The output-size formula worked step by step, as text (several lines).

    Shows the general formula, the numbers substituted, the floor, and (for
    D = 1) that the notes' O = 1 + (2P + I - K)/S and (m - k + 2c)/p + 1 give the
    same number: I + 2P - D(K-1) - 1 = I + 2P - K when D = 1.
    """
    result = output_size(I, K, S, P, D)
    before, after = _pad_pair(P, "padding P")
    label = f"{axis}: " if axis else ""
    pad_text = f"2*{before}" if before == after else f"({before}+{after})"
    pad_sum = before + after
    numerator = I + pad_sum - D * (K - 1) - 1
    lines = [
        f"{label}O = floor((I + 2P - D(K-1) - 1) / S) + 1",
        f"{' ' * len(label)}  = floor(({I} + {pad_text} - {D}*({K}-1) - 1) / {S}) + 1",
        f"{' ' * len(label)}  = floor({numerator} / {S}) + 1 = {numerator // S} + 1 = {result}",
    ]
    if D == 1:
        indent = " " * len(label)
        q = f"{numerator}/{S}" if S > 1 else f"{numerator}"
        q_value = f"floor({numerator}/{S})" if numerator % S else q
        lines += [
            f"{indent}  with D = 1, I + 2P - D(K-1) - 1 = 2P + I - K, which is the notes' formula:",
            f"{indent}    convolution notes: O = 1 + (2P + I - K)/S = 1 + ({pad_text} + {I} - {K})/{S} = 1 + {q_value} = {result}",
            f"{indent}    lecture notes:     O = (m - k + 2c)/p + 1 = ({I} - {K} + {pad_text})/{S} + 1 = {q_value} + 1 = {result}",
        ]
    if numerator % S:
        lines.append(
            f"{' ' * len(label)}  {numerator}/{S} = {numerator / S:.4g} is not whole: the floor drops the "
            f"last {numerator % S} pixel(s) a full stride cannot reach"
        )
    return "\n".join(lines)
