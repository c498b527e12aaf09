"""Coercion and checks of Keras layer arguments, field by field.

Every checker is called as ``check(value, fail, **options)``: it takes the raw
value and a ``fail(message, fix)`` callback and returns the normalised,
JSON-safe value (tuples become lists). Options are keyword-only, so that
``functools.partial(int_tuple, n=2)`` is a :data:`Check` (what a layer type's
:class:`~cnnlab.spec.layers.Arg` holds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

from cnnlab.nn.activations import ACTIVATIONS, check_activation_options
from cnnlab.nn.errors import LayerArgumentError
from cnnlab.ops.limits import MAX_SIZE, brief
from cnnlab.nn.init import ALIASES, INITIALIZERS
from cnnlab.spec.errors import suggestion

Fail = Callable[[str, str], NoReturn]
Check = Callable[[Any, Fail], Any]  # (raw value, fail) -> normalised value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounded(value: int, fail: Fail) -> int:
    """A size no real layer reaches is refused before anything is computed or allocated from it."""
    if value > MAX_SIZE:
        fail(f"{value} is over the limit of {MAX_SIZE} for a size", f"use a size of at most {MAX_SIZE}")
    return int(value)


def positive_int(value: Any, fail: Fail) -> int:
    """A whole number >= 1 (filters, units, groups), at most :data:`~cnnlab.ops.limits.MAX_SIZE`."""
    if not is_int(value) or value < 1:
        fail(f"must be a positive integer, got {brief(value)}", "write a whole number >= 1")
    return _bounded(value, fail)


def int_tuple(value: Any, fail: Fail, *, n: int, minimum: int = 1) -> list[int]:
    """An int or a list of ``n`` ints, each >= ``minimum``: ``3`` -> ``[3, 3]``."""
    items = [value] * n if is_int(value) else value
    if not isinstance(items, (list, tuple)) or len(items) != n or not all(is_int(v) for v in items):
        fail(f"must be an integer or a list of {n} integers, got {brief(value)}", f"write e.g. {[3] * n if n > 1 else 3}")
    if any(v < minimum for v in items):
        fail(f"must be >= {minimum}, got {brief(value)}", f"use values >= {minimum} (a size cannot be negative)")
    return [_bounded(v, fail) for v in items]


def boolean(value: Any, fail: Fail) -> bool:
    if not isinstance(value, bool):
        fail(f"must be true or false, got {brief(value)}", "write true or false")
    return value


def number(value: Any, fail: Fail, *, low: float | None = None, high: float | None = None, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        fail(f"must be a finite number, got {brief(value)}", "write a number such as 0.5")
    if (low is not None and value < low) or (high is not None and (value >= high if high_open else value > high)):
        bracket = ")" if high_open else "]"
        fail(f"must be in [{low}, {high}{bracket}, got {brief(value)}", f"use a value in [{low}, {high}{bracket}")
    return float(value)


def choice(value: Any, fail: Fail, *, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in options:
        fail(f"{brief(value)} is not valid", suggestion(str(value), options, "values"))
    return value.lower()


def activation(value: Any, fail: Fail) -> str | dict[str, Any] | None:
    """'relu', None, or {type: leaky_relu, alpha: 0.1} (options of the activation)."""
    if value is None:
        return None
    if isinstance(value, dict):
        options = dict(value)
        name = options.pop("type", options.pop("name", None))
        if not isinstance(name, str):
            fail(f"an activation mapping needs 'type', got {brief(value)}", "write e.g. {type: leaky_relu, alpha: 0.1}")
        choice(name, fail, options=ACTIVATIONS)
        try:
            check_activation_options(name.lower(), options)
        except LayerArgumentError as error:
            fail(f"activation {name.lower()!r}, option {error.argument!r}: {error.message}", error.fix or "")
        return {"type": name.lower(), **options}
    return choice(value, fail, options=ACTIVATIONS)


def initializer(value: Any, fail: Fail) -> str | dict[str, Any]:
    """'he_normal' or {type: random_normal, stddev: 0.01}; Keras's {class_name, config} too."""
    names = (*INITIALIZERS, *ALIASES)
    if isinstance(value, str):
        choice(value, fail, options=names)
        return value.lower()
    if isinstance(value, dict):
        options = dict(value.get("config", {})) if "class_name" in value else dict(value)
        name = value.get("class_name") or options.pop("type", None)
        if not isinstance(name, str):
            fail(f"an initializer mapping needs 'type', got {brief(value)}", "write e.g. {type: random_normal, stddev: 0.01}")
        key = choice(snake_case(name), fail, options=names)
        allowed = INITIALIZERS[ALIASES.get(key, key)]
        options.pop("seed", None)
        for option in options:
            if option not in allowed:
                fail(f"initializer {key!r} has no option {option!r}", suggestion(option, allowed, "options") if allowed else f"{key!r} takes no options")
        return {"type": key, **{k: number(v, fail) for k, v in options.items()}}
    fail(f"must be an initializer name or mapping, got {brief(value)}", "write e.g. glorot_uniform or {type: random_normal, stddev: 0.01}")


def regularizer(value: Any, fail: Fail) -> dict[str, float] | None:
    """'l2' (0.01), {l2: 0.001}, {type: l1_l2, l1: .., l2: ..}, Keras {class_name, config} -> {l1, l2}."""
    if value is None:
        return None
    defaults = {"l1": {"l1": 0.01, "l2": 0.0}, "l2": {"l1": 0.0, "l2": 0.01}, "l1_l2": {"l1": 0.01, "l2": 0.01}}
    if isinstance(value, str):
        key = choice(value, fail, options=tuple(defaults))
        return dict(defaults[key])
    if isinstance(value, dict):
        options = dict(value.get("config", {})) if "class_name" in value else dict(value)
        kind = (value.get("class_name") or options.pop("type", None) or "").lower().replace("l1l2", "l1_l2")
        if kind:
            choice(kind, fail, options=tuple(defaults))
        for option in options:
            if option not in ("l1", "l2"):
                fail(f"a regularizer has options l1 and l2, not {option!r}", "write e.g. {l2: 0.001}")
        base = dict(defaults[kind]) if kind and not options else {"l1": 0.0, "l2": 0.0}
        base.update({k: number(v, fail, low=0.0) for k, v in options.items()})
        return base
    fail(f"must be l1, l2, l1_l2 or a mapping such as {{l2: 0.001}}, got {brief(value)}", "write e.g. l2 or {l2: 0.001}")


def snake_case(name: str) -> str:
    """Keras's CamelCase -> snake_case: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, RandomNormal -> random_normal."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def padding_pairs(value: Any, fail: Fail, *, ndim: int, what: str) -> list[Any]:
    """ZeroPadding / Cropping amounts: int, [a, b] (symmetric per axis) or [[t, b], [l, r]].

    1-D: int or [left, right] -> [left, right]. 2-D -> [[top, bottom], [left, right]].
    """
    example = "2 or [1, 2]" if ndim == 1 else "1, [1, 2] or [[1, 0], [2, 1]]"
    if ndim == 1:
        if is_int(value):
            pair = [value, value]
        elif isinstance(value, (list, tuple)) and len(value) == 2 and all(is_int(v) for v in value):
            pair = list(value)
        else:
            fail(f"{what} must be an integer or [left, right], got {brief(value)}", f"write e.g. {example}")
        if min(pair) < 0:
            fail(f"{what} cannot be negative, got {brief(value)}", "use amounts >= 0")
        return [_bounded(v, fail) for v in pair]
    if is_int(value):
        pairs = [[value, value], [value, value]]
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(is_int(v) for v in value):
        pairs = [[value[0], value[0]], [value[1], value[1]]]
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(p, (list, tuple)) and len(p) == 2 and all(is_int(v) for v in p) for p in value)
    ):
        pairs = [list(p) for p in value]
    else:
        fail(f"{what} must be an integer, [rows, cols] or [[top, bottom], [left, right]], got {brief(value)}", f"write e.g. {example}")
    if min(min(p) for p in pairs) < 0:
        fail(f"{what} cannot be negative, got {brief(value)}", "use amounts >= 0")
    return [[_bounded(v, fail) for v in p] for p in pairs]


def optional(check: Check) -> Check:
    """``check``, except that None (Keras's "not given": no max_value, strides = pool_size) stays None."""

    def check_unless_none(value: Any, fail: Fail) -> Any:
        return None if value is None else check(value, fail)

    return check_unless_none


def axis(value: Any, fail: Fail) -> int:
    """A Keras axis index (-1 = the channels); which axes a layer accepts is its shape rule's business."""
    if not is_int(value):
        fail(f"must be an integer axis, got {brief(value)}", "write e.g. -1 (the channels)")
    return int(value)


def channels_last(value: Any, fail: Fail) -> str | None:
    """``data_format``: specs are channels-last like Keras, whatever layout the built model takes."""
    if value not in (None, "channels_last"):
        fail(f"only channels_last is supported, got {brief(value)}", "remove data_format: specs are channels-last like Keras; built models take NCHW tensors")
    return value


def seed(value: Any, fail: Fail) -> int | None:
    if value is not None and not is_int(value):
        fail(f"must be an integer or null, got {brief(value)}", "write an integer seed")
    return value
