"""Keras output-size arithmetic and 'same' padding, shared by convolutions and pools.

For one spatial axis of length ``I``, kernel ``K``, stride ``S``, dilation ``D``
(effective kernel ``Ke = D*(K-1) + 1``):

- ``'valid'``: ``O = floor((I - Ke) / S) + 1``
- ``'same'``:  ``O = ceil(I / S)``; total padding ``P = max((O-1)*S + Ke - I, 0)``,
  split as Keras / TensorFlow do: ``P // 2`` before, the rest (one more when
  ``P`` is odd) after, i.e. more at the bottom / right.
- ``'causal'`` (1-D only): ``Ke - 1`` zeros before, none after; ``O = ceil(I / S)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.nn.errors import one_of


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """``D*(K-1) + 1``: the span a dilated kernel covers."""
    return dilation * (kernel - 1) + 1


def output_length(size: int, kernel: int, stride: int = 1, padding: str = "valid", dilation: int = 1) -> int:
    """Output length of a convolution or pool along one axis, as Keras computes it."""
    span = effective_kernel(kernel, dilation)
    if padding == "valid":
        return (size - span) // stride + 1
    if padding in ("same", "causal"):
        return -(-size // stride)
    raise one_of("output_length", "padding", padding, ("valid", "same", "causal"))


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zeros that Keras 'same' adds along one axis; after >= before."""
    span = effective_kernel(kernel, dilation)
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def same_pad_arg(sizes: Sequence[int], kernels: Sequence[int], strides: Sequence[int], dilations: Sequence[int]) -> list[int]:
    """``F.pad`` argument for 'same' on the trailing axes (last axis first, as F.pad wants)."""
    pads: list[int] = []
    for size, k, s, d in reversed(list(zip(sizes, kernels, strides, dilations))):
        pads.extend(same_padding(size, k, s, d))
    return pads


def static_same_padding(kernels: Sequence[int], strides: Sequence[int], dilations: Sequence[int]) -> tuple[int, ...] | None:
    """Symmetric padding that equals Keras 'same' for every input size, or None.

    That is the case when every stride is 1 and every effective kernel is odd: then
    torch's own ``padding=`` argument does the job (faster, cleaner ONNX graphs).
    """
    pads = []
    for k, s, d in zip(kernels, strides, dilations):
        span = effective_kernel(k, d)
        if s != 1 or span % 2 == 0:
            return None
        pads.append((span - 1) // 2)
    return tuple(pads)


def transpose_output_length(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    """Keras Conv*DTranspose output length (no output_padding).

    ``'valid'``: ``I*S + max(Ke - S, 0)``; ``'same'``: ``I*S``.
    """
    span = effective_kernel(kernel, dilation)
    if padding == "valid":
        return size * stride + max(span - stride, 0)
    if padding == "same":
        return size * stride
    raise one_of("transpose_output_length", "padding", padding, ("valid", "same"))


def transpose_crop(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> tuple[int, int]:
    """(before, after) for ``F.pad`` on a full transposed-conv output of length ``(I-1)*S + Ke``.

    Negative values crop, positive values add zeros, so that the result has Keras's
    length: 'same' crops ``max(Ke - S, 0) // 2`` at the start, like TensorFlow's
    conv2d_transpose (the adjoint of a 'same' convolution).
    """
    span = effective_kernel(kernel, dilation)
    full = (size - 1) * stride + span
    target = transpose_output_length(size, kernel, stride, padding, dilation)
    before = max(span - stride, 0) // 2 if padding == "same" else 0
    return -before, target - (full - before)

