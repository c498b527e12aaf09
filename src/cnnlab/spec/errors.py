"""Spec errors: where (file:line, layer index, name, type, field), what, and the fix.

A :class:`SpecError` may carry ``partial``: the summary of the layers that did
work, so that the CLI can print the table up to the failing layer first.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Protocol

from cnnlab.errors import CnnlabError


class PrintableSummary(Protocol):
    """What an error needs of :class:`cnnlab.spec.summary.Summary` (summary imports this module)."""

    def print(self) -> None: ...


class SpecError(CnnlabError):
    """A model spec that cannot work; raised before anything runs."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None, partial: PrintableSummary | None = None) -> None:
        super().__init__(message, where=where, fix=fix)
        self.partial = partial


def closest(word: str, options: Iterable[str]) -> str | None:
    """The valid name closest to ``word`` (case-insensitive), or None."""
    options = list(options)
    lowered = {o.lower(): o for o in options}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[match[0]] if match else None


def suggestion(word: str, options: Iterable[str], what: str) -> str:
    """'use X' for the closest valid name, else the list of valid ones."""
    options = sorted(options)
    best = closest(word, options)
    if best is not None:
        return f"did you mean {best!r}?"
    return f"use one of the valid {what}: {', '.join(options)}"


def fmt_shape(shape: Any) -> str:
    """Keras-style shape with the batch: (None, 28, 28, 1)."""
    if shape is None:
        return "?"
    if isinstance(shape, list) and shape and isinstance(shape[0], (list, tuple)):
        return "[" + ", ".join(fmt_shape(s) for s in shape) + "]"
    return "(" + ", ".join(["None", *(str(int(d)) for d in shape)]) + ")"
