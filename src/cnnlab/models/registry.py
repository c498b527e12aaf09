"""The model registry: ``@register`` on a builder, ``create`` by name (timm-style).

A builder is a function ``fn(*, option=default, ..., **core: Unpack[CoreArgs])``
(``core``: ``num_classes``, ``input_shape``, ``include_top``) returning a
:class:`~cnnlab.models.base.ZooModel`; its keyword-only parameters are its options.
``@register(...)`` records it under its function name with its defaults and reference
data, one decorated function per name, as timm does::

    @register_resnet(params=25_636_712, trainable=25_583_592, description="ResNet-50 (ImageNet)")
    def resnet50(*, conv_bias: bool = True, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
        return _resnet(Bottleneck, [3, 4, 6, 3], conv_bias=conv_bias, pooling=pooling, **core)

(``register_resnet`` is ``register`` with the family's shared facts bound.) Family
modules (lenet.py, vgg.py, ...) are imported on first use so that importing
``cnnlab.models`` stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import POOLINGS, check_input_shape
from cnnlab.nn.activations import ACTIVATIONS
from cnnlab.ops.limits import MAX_SIZE, brief, check_bytes
from cnnlab.nn.params import ParamCount, count_params

# One module per family, imported in this order (the order `cnnlab models` lists).
FAMILIES = ("lenet", "notes", "alexnet", "vgg", "googlenet", "resnet", "resnet_cifar", "densenet", "speedrun")
_CORE_ARGS = ("num_classes", "input_shape", "include_top")


@dataclass(frozen=True)
class TorchvisionMap:
    """How a torchvision state dict's keys land on our modules.

    ``rename(key) -> our key`` for every tensor of the torchvision model.
    ``zero_fill(our_key)``: our tensors torchvision has no counterpart for and
    that are exactly equivalent at zero (a convolution's bias before batch norm).
    ``optional(torchvision_key)``: tensors we may drop (auxiliary classifiers).
    """

    rename: Callable[[str], str]
    zero_fill: Callable[[str], bool] = lambda key: False
    optional: Callable[[str], bool] = lambda key: False


@dataclass(frozen=True)
class Recipe:
    """A zoo model's default training recipe (timm's ``pretrained_cfg``, a paper's training table).

    ``settings``: experiment-file fields in the experiment file's own form
    (``{"optimizer": {"name": "sgd", "lr": 0.05}, "schedule": {"name": "onecycle"},
    "batch_size": 32, "data": {"standardize": True}, "model_options": {...}}``).
    Training the model fills each of them the user left unset (no flag, not in the
    experiment file); anything the user sets wins. ``summary``: the recipe in words,
    for the ``picked:`` line and `cnnlab models NAME`.
    A test validates every registered recipe against the experiment schema.
    """

    settings: Mapping[str, Any]
    summary: str


@dataclass(frozen=True)
class ModelInfo:
    """What `cnnlab models` shows, and what `create` needs, for one registered name."""

    name: str
    family: str
    input_shape: tuple[int, int, int]
    num_classes: int
    params: int  # Keras-style total (trainable + non-trainable) of the default model
    trainable: int
    reference: str
    min_size: int
    description: str
    builder: Callable[..., nn.Module] = field(repr=False)
    torchvision: TorchvisionMap | None = field(default=None, repr=False)
    recipe: Recipe | None = field(default=None, repr=False)

    @property
    def options(self) -> dict[str, Any]:
        """The builder's extra keyword options and their defaults."""
        signature = inspect.signature(self.builder)
        return {
            name: param.default
            for name, param in signature.parameters.items()
            if name not in _CORE_ARGS and param.kind is inspect.Parameter.KEYWORD_ONLY
        }


_REGISTRY: dict[str, ModelInfo] = {}
_loaded = False


def register(
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    params: int,
    trainable: int | None = None,
    reference: str,
    min_size: int,
    description: str,
    name: str | None = None,
    torchvision: TorchvisionMap | None = None,
    recipe: Recipe | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Record a builder under ``name`` (default: the function's name).

    ``params`` / ``trainable`` are the Keras-style counts of the default model
    (``num_classes`` classes at ``input_shape``, with its top); a test rebuilds
    every model on the meta device and checks them, so `cnnlab models` can list
    them without building anything. ``recipe``: the model's default training
    settings (:class:`Recipe`), or None to train it with the generic defaults.
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is registered twice")
        _REGISTRY[key] = ModelInfo(
            name=key,
            family=builder.__module__.rsplit(".", 1)[-1],
            input_shape=tuple(input_shape),  # type: ignore[arg-type]
            num_classes=num_classes,
            params=params,
            trainable=params if trainable is None else trainable,
            reference=reference,
            min_size=min_size,
            description=description,
            builder=builder,
            torchvision=torchvision,
            recipe=recipe,
        )
        return builder

    return decorate


def _load_families() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for family in FAMILIES:
            importlib.import_module(f"cnnlab.models.{family}")


def names(family: str | None = None) -> list[str]:
    """Every registered model name, family by family in registration order."""
    _load_families()
    return [key for key, entry in _REGISTRY.items() if family is None or entry.family == family]


def info(name: str) -> ModelInfo:
    """The registry entry of ``name``; unknown names raise with the closest ones."""
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    lowered = name.lower().replace("-", "").replace("_", "")
    for key in _REGISTRY:
        if key.replace("_", "") == lowered:
            raise CnnlabError(
                f"unknown model {name!r}", where="model name", fix=f"did you mean {key!r}?"
            ) from None
    close = difflib.get_close_matches(name.lower(), list(_REGISTRY), n=5, cutoff=0.5)
    close += [key for key in _REGISTRY if key.startswith(name.lower()[:4]) and key not in close][: 5 - len(close)]
    hint = f"did you mean {', '.join(close)}?" if close else "run `cnnlab models` to list them"
    raise CnnlabError(f"unknown model {name!r}", where="model name", fix=hint)


def create(
    name: str,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    include_top: bool = True,
    **options: Any,
) -> nn.Module:
    """Build model ``name``; ``model.config`` rebuilds it with ``create(**config)``.

    ``num_classes``: outputs of the top (default: the reference's).
    ``input_shape``: (H, W, C) in Keras order (default: the reference's).
    ``include_top=False``: the backbone only; its output is the last feature map
    (N, F, h, w), or (N, F) with ``pooling='avg'`` / ``'max'``; ``model.num_features`` is F.
    ``options``: family-specific, see ``info(name).options``.
    """
    entry = info(name)
    if num_classes is None:
        num_classes = entry.num_classes
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise CnnlabError(
            f"num_classes must be a positive integer, got {num_classes!r}",
            where=f"{name}: num_classes",
            fix="pass the number of classes (or of regression outputs), e.g. num_classes=10",
        )
    shape = check_input_shape(name, entry.input_shape if input_shape is None else input_shape, min_size=entry.min_size)
    accepted = entry.options
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(f"{key}={value!r}" for key, value in accepted.items()) or "none"
        raise CnnlabError(
            f"unknown option(s) {', '.join(unknown)}",
            where=f"{name}: options",
            fix=f"the options of {name} are: {listed}",
        )
    try:
        json.dumps(options)
    except TypeError as error:
        raise CnnlabError(
            f"options must be plain JSON values (numbers, strings, lists): {error}",
            where=f"{name}: options",
            fix="pass only numbers, strings, booleans, None and lists of them",
        ) from None
    hints = _option_types(entry.builder)
    for key, value in options.items():
        _check_option(name, key, value, accepted[key], hints.get(key))
    if num_classes > MAX_SIZE:
        raise CnnlabError(
            f"num_classes {num_classes} is over the limit of {MAX_SIZE}",
            where=f"{name}: num_classes",
            fix="pass the number of classes of the data, e.g. num_classes=10",
        )
    arguments = {"num_classes": num_classes, "input_shape": shape, "include_top": bool(include_top), **options}
    if torch.get_default_device().type != "meta":
        _check_memory(name, entry, shape, arguments)
    model = entry.builder(**arguments)
    model.input_shape = shape
    model.config = {
        "name": name,
        "num_classes": num_classes,
        "input_shape": list(shape),
        "include_top": bool(include_top),
        **{key: list(value) if isinstance(value, tuple) else value for key, value in options.items()},
    }
    return model


# Options several families share, and what each accepts: (check(value) -> ok, what it must be, an example).
_OPTION_RULES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "dropout": (lambda v: _is_number(v) and 0.0 <= v < 1.0, "a rate in [0, 1)", "0.5"),
    "pooling": (lambda v: v in POOLINGS, "None, 'avg' or 'max'", "'avg'"),
    "head": (lambda v: v in ("dense", "conv"), "'dense' or 'conv'", "'dense'"),
    "top": (lambda v: v in ("flatten", "gap"), "'flatten' or 'gap'", "'gap'"),
    "output": (lambda v: v in ("rbf", "dense"), "'rbf' or 'dense'", "'dense'"),
    "output_activation": (lambda v: v is None or (isinstance(v, str) and v.lower() in ACTIVATIONS), f"None or an activation ({', '.join(ACTIVATIONS)})", "'softmax'"),
    "hidden": (lambda v: _is_int(v) and 0 <= v <= MAX_SIZE, f"a whole number of units in 0..{MAX_SIZE}", "128"),
    "stem": (lambda v: _is_int(v) and 1 <= v <= MAX_SIZE, f"a whole number of filters in 1..{MAX_SIZE}", "32"),
    "widths": (
        lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and all(_is_int(w) and 1 <= w <= MAX_SIZE for w in v),
        f"three whole numbers of filters in 1..{MAX_SIZE}",
        "[64, 256, 256]",
    ),
    "logit_scale": (lambda v: _is_number(v) and v > 0, "a positive number", "0.125"),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _option_types(builder: Callable[..., nn.Module]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(builder)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: check by the default instead
        return {}


def _check_option(model: str, key: str, value: Any, default: Any, hint: Any) -> None:
    """Refuse an option value the builder would choke on (or silently misuse), naming the option."""
    if key in _OPTION_RULES:
        ok, what, example = _OPTION_RULES[key]
    elif hint is bool or isinstance(default, bool):
        ok, what, example = (lambda v: isinstance(v, bool)), "true or false", "True or False"
    elif hint is int or _is_int(default):
        ok, what, example = (lambda v: _is_int(v) and 0 <= v <= MAX_SIZE), f"a whole number in 0..{MAX_SIZE}", repr(default)
    elif hint is float or isinstance(default, float):
        ok, what, example = _is_number, "a finite number", repr(default)
    else:
        return
    if not ok(value):
        shown = repr(list(default) if isinstance(default, tuple) else default)
        example = shown if ok(default) and default is not None and not isinstance(default, bool) else example
        raise CnnlabError(
            f"must be {what}, got {brief(value)}",
            where=f"{model}: option {key!r}",
            fix=f"pass e.g. {key}={example}, or leave it out (default {shown})",
        )


def _check_memory(name: str, entry: ModelInfo, shape: tuple[int, int, int], arguments: dict[str, Any]) -> None:
    """Count the weights on the meta device (no memory) and refuse what the machine cannot hold."""
    with torch.device("meta"):
        probe = entry.builder(**arguments)
    numbers = sum(t.numel() for t in probe.parameters()) + sum(t.numel() for t in probe.buffers())
    check_bytes(
        numbers * 4,
        where=f"{name}: model size",
        what=f"its {numbers:,} weights",
        fix="use fewer classes or smaller options (widths, hidden units), or a smaller model",
    )
    check_bytes(
        math.prod(shape) * 4,
        where=f"{name}: input_shape",
        what=f"one {shape[0]}x{shape[1]}x{shape[2]} input",
        fix="resize the images (e.g. to 224x224)",
    )


def count(name: str, **kwargs: Any) -> ParamCount:
    """Keras-style parameter count of ``create(name, **kwargs)``, built on the meta device.

    Costs no memory or initialisation time, even for VGG-19.
    """
    with torch.device("meta"):
        model = create(name, **kwargs)
    return count_params(model)
