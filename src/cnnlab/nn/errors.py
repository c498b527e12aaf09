"""The error cnnlab.nn layers raise for a bad constructor argument.

Like Keras's layer errors it names the layer and the argument, says what was
wrong and how to fix it; it is a :class:`cnnlab.CnnlabError` (so the CLI
prints one line) and a ``ValueError`` (so ``except ValueError`` code written
against torch layers keeps working).
"""

from __future__ import annotations

import difflib

from cnnlab.errors import CnnlabError
from cnnlab.ops.limits import brief


class LayerArgumentError(CnnlabError, ValueError):
    """``Conv2d: argument 'padding': must be 'valid' or 'same', got 'foo' Fix: ...``."""

    def __init__(self, layer: str, argument: str, message: str, fix: str) -> None:
        super().__init__(message, where=f"{layer}: argument {argument!r}", fix=fix)
        self.layer = layer
        self.argument = argument
        self.message = message


def one_of(layer: str, argument: str, value: object, allowed: tuple[str, ...]) -> LayerArgumentError:
    """The error for ``value`` not among ``allowed``."""
    listed = ", ".join(repr(a) for a in allowed)
    return LayerArgumentError(layer, argument, f"must be one of {listed}, got {brief(value)}", f"use {argument}={allowed[0]!r}" + (f" or {allowed[1]!r}" if len(allowed) > 1 else ""))


def suggestion_text(word: object, options: tuple[str, ...]) -> str:
    """'did you mean X?' for the closest valid name, else the list of them."""
    close = difflib.get_close_matches(str(word).lower(), list(options), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}?" if close else f"use one of {', '.join(options)}"


def sizes(value: object, n: int, layer: str, argument: str) -> tuple[int, ...]:
    """An int or ``n`` ints, each a positive integer (kernel_size, strides, dilation, pool_size)."""
    items = [value] * n if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(items, (list, tuple))
        or len(items) != n
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items)
    ):
        example = 3 if n == 1 else (3,) * n
        raise LayerArgumentError(layer, argument, f"must be a positive integer or {n} of them, got {brief(value)}", f"use e.g. {argument}={example}")
    return tuple(int(v) for v in items)
