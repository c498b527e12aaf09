"""The layer types a spec may use: Keras names, Keras defaults, shape rules, builders.

Shapes here are Keras's: channels-last, without the batch, e.g. (28, 28, 1),
(steps, channels) or (units,). Each :class:`LayerType` says which arguments it
takes (with Keras's defaults), how its output shape follows from its input
shapes (refusing what Keras refuses, plus sizes that would be empty), and how
to make the cnnlab.nn module that computes it on channels-first tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from torch import nn

import cnnlab.nn as cnn
from cnnlab.nn.padding import output_length, transpose_output_length
from cnnlab.spec import fields as F
from cnnlab.spec.errors import fmt_shape

Shape = tuple[int, ...]
REQUIRED = object()


@dataclass
class Ctx:
    """What a shape rule or builder sees: normalised args, input shapes, and ``fail``."""

    type: str
    args: dict[str, Any]
    shapes: list[Shape]
    fail: Callable[[str | None, str, str], NoReturn]  # (field, message, fix)

    @property
    def shape(self) -> Shape:
        return self.shapes[0]


@dataclass(frozen=True)
class LayerType:
    name: str
    defaults: dict[str, Any]
    infer: Callable[[Ctx], Shape]
    make: Callable[[Ctx, Shape], nn.Module | None]
    ranks: tuple[int, ...] | None = None  # input ranks without the batch; None: any >= 1
    dims: int = 0  # spatial dims of kernel-like arguments
    merge: bool = False
    # torch tensor name -> (initializer argument, regularizer argument)
    weights: dict[str, tuple[str, str | None]] = field(default_factory=dict)


TYPES: dict[str, LayerType] = {}


def _register(layer_type: LayerType) -> None:
    TYPES[layer_type.name] = layer_type


# ---- argument normalisation -------------------------------------------------------------

_CONV_PADDINGS = ("valid", "same")


def coerce(layer_type: LayerType, name: str, value: Any, fail: Callable[[str, str], NoReturn]) -> Any:
    """Normalise one argument of ``layer_type`` (JSON-safe) or call ``fail``."""
    n = layer_type.dims
    if name in ("filters", "units", "groups"):
        return F.positive_int(value, fail)
    if name == "size" and layer_type.name == "UpSampling1D":
        return F.positive_int(value, fail)
    if name in ("kernel_size", "dilation_rate", "size", "pool_size"):
        return F.int_tuple(value, n, fail)
    if name == "strides":
        return None if value is None and "pool_size" in layer_type.defaults else F.int_tuple(value, n, fail)
    if name == "padding":
        if layer_type.name.startswith("ZeroPadding"):
            return F.padding_pairs(value, n, fail, "padding")
        options = (*_CONV_PADDINGS, "causal") if layer_type.name == "Conv1D" else _CONV_PADDINGS
        return F.choice(value, options, fail)
    if name == "cropping":
        return F.padding_pairs(value, n, fail, "cropping")
    if name == "activation":
        return F.activation(value, fail)
    if name in ("use_bias", "center", "scale", "keepdims", "trainable"):
        return F.boolean(value, fail)
    if name.endswith("_initializer"):
        return F.initializer(value, fail)
    if name.endswith("_regularizer"):
        return F.regularizer(value, fail)
    if name == "rate":
        return F.number(value, fail, low=0.0, high=1.0)
    if name == "momentum":
        return F.number(value, fail, low=0.0, high=1.0)
    if name == "epsilon":
        return F.number(value, fail, low=0.0)
    if name in ("negative_slope", "alpha", "threshold"):
        return F.number(value, fail)
    if name == "max_value":
        return None if value is None else F.number(value, fail, low=0.0)
    if name == "axis":
        if not F.is_int(value):
            fail(f"must be an integer axis, got {value!r}", "write e.g. -1 (the channels)")
        return int(value)
    if name == "interpolation":
        return F.choice(value, cnn.UpSampling2d.INTERPOLATIONS, fail)
    if name == "target_shape":
        if not isinstance(value, (list, tuple)) or not value or not all(F.is_int(v) and (v > 0 or v == -1) for v in value):
            fail(f"must be a list of positive sizes (one may be -1), got {value!r}", "write e.g. [7, 7, 64] (channels last, no batch)")
        if sum(v == -1 for v in value) > 1:
            fail(f"only one size may be -1, got {value!r}", "give every size but one")
        return [int(v) for v in value]
    if name == "shared_axes":
        if value is None:
            return None
        axes = [value] if F.is_int(value) else value
        if not isinstance(axes, (list, tuple)) or not all(F.is_int(a) and a >= 1 for a in axes):
            fail(f"must be a list of Keras axes >= 1 (1, 2 = height, width), got {value!r}", "write e.g. [1, 2] for one alpha per channel")
        return sorted(int(a) for a in axes)
    if name == "data_format":
        if value not in (None, "channels_last"):
            fail(f"only channels_last is supported, got {value!r}", "remove data_format: specs are channels-last like Keras; built models take NCHW tensors")
        return value
    if name in ("noise_shape",):
        if value is not None:
            fail("a noise_shape is not supported", "remove noise_shape, or use SpatialDropout2D / SpatialDropout1D to drop whole channels")
        return None
    if name == "seed":
        if value is not None and not F.is_int(value):
            fail(f"must be an integer or null, got {value!r}", "write an integer seed")
        return value
    if name == "shape":
        return F.int_tuple(value, len(value) if isinstance(value, (list, tuple)) else 1, fail)
    return value


# ---- shape rules --------------------------------------------------------------------------

def _spatial_rank_name(rank: int) -> str:
    return {1: "a vector (units,)", 2: "a sequence (steps, channels)", 3: "an image (height, width, channels)"}.get(rank, f"a {rank}-D tensor")


def _conv(ctx: Ctx) -> Shape:
    a = ctx.args
    *spatial, channels = ctx.shape
    if max(a["strides"]) > 1 and max(a["dilation_rate"]) > 1:
        ctx.fail("strides", f"strides {a['strides']} > 1 together with dilation_rate {a['dilation_rate']} > 1 is not supported (Keras refuses it too)", "use strides 1 with dilation, or dilation 1 with strides")
    groups = a.get("groups", 1)
    if channels % groups or a["filters"] % groups:
        ctx.fail("groups", f"groups={groups} must divide both the input channels ({channels}, input shape {fmt_shape(ctx.shape)}) and filters ({a['filters']})", f"use a groups value that divides {channels} and {a['filters']}")
    out = []
    for axis, size in enumerate(spatial):
        if ctx.type == "Conv2DTranspose":
            length = transpose_output_length(size, a["kernel_size"][axis], a["strides"][axis], a["padding"], a["dilation_rate"][axis])
        else:
            length = output_length(size, a["kernel_size"][axis], a["strides"][axis], a["padding"], a["dilation_rate"][axis])
        if length < 1:
            span = [d * (k - 1) + 1 for k, d in zip(a["kernel_size"], a["dilation_rate"])]
            dilated = f" (dilated span {'x'.join(map(str, span))})" if span != a["kernel_size"] else ""
            ctx.fail(
                "kernel_size",
                f"kernel {'x'.join(map(str, a['kernel_size']))}{dilated} is larger than its input {'x'.join(map(str, spatial))} (input shape {fmt_shape(ctx.shape)}) under padding='valid'",
                "use padding='same', a smaller kernel_size, or fewer pooling / strided layers before it",
            )
        out.append(length)
    return (*out, a["filters"])


def _pool(ctx: Ctx) -> Shape:
    a = ctx.args
    *spatial, channels = ctx.shape
    out = []
    for axis, size in enumerate(spatial):
        length = output_length(size, a["pool_size"][axis], a["strides"][axis], a["padding"])
        if length < 1:
            ctx.fail(
                "pool_size",
                f"pool_size {'x'.join(map(str, a['pool_size']))} is larger than its input {'x'.join(map(str, spatial))} (input shape {fmt_shape(ctx.shape)}) under padding='valid'",
                "use padding='same', a smaller pool_size, or fewer downsampling layers before it",
            )
        out.append(length)
    return (*out, channels)


def _global_pool(ctx: Ctx) -> Shape:
    *spatial, channels = ctx.shape
    return (*([1] * len(spatial)), channels) if ctx.args["keepdims"] else (channels,)


def _upsample(ctx: Ctx) -> Shape:
    *spatial, channels = ctx.shape
    size = ctx.args["size"]
    factors = [size] if isinstance(size, int) else size
    return (*(s * f for s, f in zip(spatial, factors)), channels)


def _same(ctx: Ctx) -> Shape:
    return ctx.shape


def _dense(ctx: Ctx) -> Shape:
    return (*ctx.shape[:-1], ctx.args["units"])


def _flatten(ctx: Ctx) -> Shape:
    return (math.prod(ctx.shape),)


def _zero_padding(ctx: Ctx) -> Shape:
    *spatial, channels = ctx.shape
    pairs = ctx.args["padding"]
    pairs = [pairs] if ctx.type == "ZeroPadding1D" else pairs
    return (*(s + p[0] + p[1] for s, p in zip(spatial, pairs)), channels)


def _cropping(ctx: Ctx) -> Shape:
    *spatial, channels = ctx.shape
    pairs = ctx.args["cropping"]
    pairs = [pairs] if ctx.type == "Cropping1D" else pairs
    out = []
    for s, (before, after) in zip(spatial, pairs):
        if before + after >= s:
            ctx.fail("cropping", f"cropping {ctx.args['cropping']} removes the whole input {fmt_shape(ctx.shape)}", "crop less than the input size on every axis")
        out.append(s - before - after)
    return (*out, channels)


def _reshape(ctx: Ctx) -> Shape:
    target = list(ctx.args["target_shape"])
    total = math.prod(ctx.shape)
    known = math.prod(v for v in target if v != -1)
    if -1 in target:
        if total % known:
            ctx.fail("target_shape", f"cannot reshape {fmt_shape(ctx.shape)} ({total} values) to {target}: {total} is not a multiple of {known}", "choose sizes whose product divides the number of values")
        target[target.index(-1)] = total // known
    elif known != total:
        ctx.fail("target_shape", f"cannot reshape {fmt_shape(ctx.shape)} ({total} values) to {target} ({known} values)", f"choose sizes whose product is {total}")
    return tuple(target)


def _merge(ctx: Ctx) -> Shape:
    first = ctx.shapes[0]
    for shape in ctx.shapes[1:]:
        if shape != first:
            shapes = ", ".join(fmt_shape(s) for s in ctx.shapes)
            ctx.fail("inputs", f"{ctx.type} needs inputs of the same shape, got {shapes}", "make the branches agree: a 1x1 Conv2D to match channels, strides / pooling to match sizes")
    return first


def _concatenate(ctx: Ctx) -> Shape:
    rank = len(ctx.shapes[0])
    axis = ctx.args["axis"]
    if not -rank - 1 <= axis <= rank or axis in (0, -rank - 1):
        ctx.fail("axis", f"axis {axis} does not exist in inputs of shape {fmt_shape(ctx.shapes[0])} (the batch axis 0 cannot be joined)", "use -1 to join channels")
    k = (axis if axis > 0 else axis + rank + 1) - 1  # index into the batch-less shape
    for shape in ctx.shapes[1:]:
        if len(shape) != rank or any(s != t for i, (s, t) in enumerate(zip(shape, ctx.shapes[0])) if i != k):
            shapes = ", ".join(fmt_shape(s) for s in ctx.shapes)
            ctx.fail("inputs", f"Concatenate(axis={axis}) needs inputs that agree on every other axis, got {shapes}", "make the branches' sizes agree (padding='same', matching strides and pooling)")
    return tuple(sum(s[k] for s in ctx.shapes) if i == k else d for i, d in enumerate(ctx.shapes[0]))


def _softmax(ctx: Ctx) -> Shape:
    if ctx.args["axis"] != -1:
        ctx.fail("axis", f"only axis -1 (the channels) is supported, got {ctx.args['axis']}", "use axis: -1")
    return ctx.shape


def _batchnorm(ctx: Ctx) -> Shape:
    if ctx.args["axis"] not in (-1, len(ctx.shape)):
        ctx.fail("axis", f"only the channel axis (-1) is supported, got {ctx.args['axis']}", "use axis: -1")
    return ctx.shape


# ---- builders ----------------------------------------------------------------------------

def _act(ctx: Ctx, out: Shape) -> nn.Module | None:
    spec = ctx.args.get("activation")
    if spec is None or spec == "linear":
        return None
    options = dict(spec) if isinstance(spec, dict) else {"type": spec}
    name = options.pop("type")
    return cnn.activation(name, channels=out[-1], rank=len(out), **options)


def _make_conv(ctx: Ctx, out: Shape) -> nn.Module:
    a = ctx.args
    cin = ctx.shape[-1]
    if ctx.type == "Conv2D":
        return cnn.Conv2d(cin, a["filters"], a["kernel_size"], a["strides"], a["padding"], a["dilation_rate"], a["groups"], a["use_bias"], _act(ctx, out))
    if ctx.type == "Conv1D":
        return cnn.Conv1d(cin, a["filters"], a["kernel_size"], a["strides"], a["padding"], a["dilation_rate"], a["groups"], a["use_bias"], _act(ctx, out))
    return cnn.ConvTranspose2d(cin, a["filters"], a["kernel_size"], a["strides"], a["padding"], a["dilation_rate"], a["use_bias"], _act(ctx, out))


def _make_pool(ctx: Ctx, out: Shape) -> nn.Module:
    a = ctx.args
    cls = {"MaxPooling2D": cnn.MaxPool2d, "MaxPooling1D": cnn.MaxPool1d, "AveragePooling2D": cnn.AvgPool2d, "AveragePooling1D": cnn.AvgPool1d}[ctx.type]
    if ctx.type.endswith("1D"):
        return cls(a["pool_size"][0], a["strides"][0], a["padding"])
    return cls(tuple(a["pool_size"]), tuple(a["strides"]), a["padding"])


def _prelu(ctx: Ctx) -> Shape:
    for axis in ctx.args["shared_axes"] or []:
        if axis > len(ctx.shape):
            ctx.fail("shared_axes", f"axis {axis} does not exist in input {fmt_shape(ctx.shape)}", f"use axes between 1 and {len(ctx.shape)}")
    return ctx.shape


def _make_prelu(ctx: Ctx, out: Shape) -> nn.Module:
    keras_shape = [1 if (axis + 1) in (ctx.args["shared_axes"] or []) else d for axis, d in enumerate(ctx.shape)]
    torch_shape = [keras_shape[-1], *keras_shape[:-1]]
    return cnn.PReLU(torch_shape, init=0.0)


def _make_activation(ctx: Ctx, out: Shape) -> nn.Module:
    return _act(ctx, out) or nn.Identity()


def _make_dropout(ctx: Ctx, out: Shape) -> nn.Module:
    rate = ctx.args["rate"]
    if ctx.type == "SpatialDropout2D":
        return nn.Dropout2d(rate)
    if ctx.type == "SpatialDropout1D":
        return nn.Dropout1d(rate)
    return nn.Dropout(rate)


_MAKERS: dict[str, Callable[[Ctx, Shape], nn.Module | None]] = {
    "Dense": lambda c, o: cnn.Dense(c.shape[-1], c.args["units"], c.args["use_bias"], _act(c, o)),
    "Flatten": lambda c, o: cnn.Flatten(),
    "Reshape": lambda c, o: cnn.Reshape(o),
    "BatchNormalization": lambda c, o: cnn.BatchNorm(c.shape[-1], c.args["momentum"], c.args["epsilon"], c.args["center"], c.args["scale"]),
    "GlobalAveragePooling2D": lambda c, o: cnn.GlobalAvgPool(c.args["keepdims"]),
    "GlobalAveragePooling1D": lambda c, o: cnn.GlobalAvgPool(c.args["keepdims"]),
    "GlobalMaxPooling2D": lambda c, o: cnn.GlobalMaxPool(c.args["keepdims"]),
    "GlobalMaxPooling1D": lambda c, o: cnn.GlobalMaxPool(c.args["keepdims"]),
    "UpSampling2D": lambda c, o: cnn.UpSampling2d(tuple(c.args["size"]), c.args["interpolation"]),
    "UpSampling1D": lambda c, o: cnn.UpSampling1d(c.args["size"]),
    "BedOfNailsUpSampling2D": lambda c, o: cnn.BedOfNailsUpsample(tuple(c.args["size"])),
    "ZeroPadding2D": lambda c, o: cnn.ZeroPadding2d(c.args["padding"]),
    "ZeroPadding1D": lambda c, o: cnn.ZeroPadding1d(c.args["padding"]),
    "Cropping2D": lambda c, o: cnn.Cropping2d(c.args["cropping"]),
    "Cropping1D": lambda c, o: cnn.Cropping1d(c.args["cropping"]),
    "ReLU": lambda c, o: cnn.KerasReLU(c.args["max_value"], c.args["negative_slope"], c.args["threshold"]),
    "LeakyReLU": lambda c, o: nn.LeakyReLU(c.args["negative_slope"]),
    "ELU": lambda c, o: nn.ELU(c.args["alpha"]),
    "Softmax": lambda c, o: cnn.Softmax(),
    "Add": lambda c, o: cnn.Add(),
    "Subtract": lambda c, o: cnn.Subtract(),
    "Multiply": lambda c, o: cnn.Multiply(),
    "Average": lambda c, o: cnn.Average(),
    "Maximum": lambda c, o: cnn.Maximum(),
    "Minimum": lambda c, o: cnn.Minimum(),
    "Concatenate": lambda c, o: cnn.Concatenate(c.args["axis"]),
}

# ---- the table ----------------------------------------------------------------------------

_KERNEL = {
    "kernel_initializer": "glorot_uniform",
    "bias_initializer": "zeros",
    "kernel_regularizer": None,
    "bias_regularizer": None,
}
_KERNEL_WEIGHTS = {"weight": ("kernel_initializer", "kernel_regularizer"), "bias": ("bias_initializer", "bias_regularizer")}


def _conv_defaults(dims: int, groups: bool = True) -> dict[str, Any]:
    out = {
        "filters": REQUIRED,
        "kernel_size": REQUIRED,
        "strides": 1,
        "padding": "valid",
        "data_format": None,
        "dilation_rate": 1,
        "activation": None,
        "use_bias": True,
        **_KERNEL,
    }
    if groups:
        out["groups"] = 1
    return out


_register(LayerType("Conv2D", _conv_defaults(2), _conv, _make_conv, (3,), 2, weights=_KERNEL_WEIGHTS))
_register(LayerType("Conv1D", _conv_defaults(1), _conv, _make_conv, (2,), 1, weights=_KERNEL_WEIGHTS))
_register(LayerType("Conv2DTranspose", _conv_defaults(2, groups=False), _conv, _make_conv, (3,), 2, weights=_KERNEL_WEIGHTS))
for _name, _dims in (("MaxPooling2D", 2), ("AveragePooling2D", 2), ("MaxPooling1D", 1), ("AveragePooling1D", 1)):
    # Keras 3: MaxPooling has pool_size 2 by default, AveragePooling requires it.
    _pool_size = 2 if _name.startswith("Max") else REQUIRED
    _register(LayerType(_name, {"pool_size": _pool_size, "strides": None, "padding": "valid", "data_format": None}, _pool, _make_pool, (_dims + 1,), _dims))
for _name, _dims in (("GlobalAveragePooling2D", 2), ("GlobalMaxPooling2D", 2), ("GlobalAveragePooling1D", 1), ("GlobalMaxPooling1D", 1)):
    _register(LayerType(_name, {"data_format": None, "keepdims": False}, _global_pool, _MAKERS[_name], (_dims + 1,), _dims))
_register(LayerType("UpSampling2D", {"size": 2, "data_format": None, "interpolation": "nearest"}, _upsample, _MAKERS["UpSampling2D"], (3,), 2))
_register(LayerType("UpSampling1D", {"size": 2}, _upsample, _MAKERS["UpSampling1D"], (2,), 1))
_register(LayerType("BedOfNailsUpSampling2D", {"size": 2}, _upsample, _MAKERS["BedOfNailsUpSampling2D"], (3,), 2))
_register(LayerType("Dense", {"units": REQUIRED, "activation": None, "use_bias": True, **_KERNEL}, _dense, _MAKERS["Dense"], weights=_KERNEL_WEIGHTS))
_register(LayerType("Flatten", {"data_format": None}, _flatten, _MAKERS["Flatten"]))
_register(LayerType("Reshape", {"target_shape": REQUIRED}, _reshape, _MAKERS["Reshape"]))
_register(LayerType("Dropout", {"rate": REQUIRED, "noise_shape": None, "seed": None}, _same, _make_dropout))
_register(LayerType("SpatialDropout2D", {"rate": REQUIRED, "data_format": None, "seed": None}, _same, _make_dropout, (3,)))
_register(LayerType("SpatialDropout1D", {"rate": REQUIRED, "seed": None}, _same, _make_dropout, (2,)))
_register(
    LayerType(
        "BatchNormalization",
        {
            "axis": -1,
            "momentum": 0.99,
            "epsilon": 0.001,
            "center": True,
            "scale": True,
            "beta_initializer": "zeros",
            "gamma_initializer": "ones",
            "moving_mean_initializer": "zeros",
            "moving_variance_initializer": "ones",
            "beta_regularizer": None,
            "gamma_regularizer": None,
        },
        _batchnorm,
        _MAKERS["BatchNormalization"],
        weights={
            "weight": ("gamma_initializer", "gamma_regularizer"),
            "bias": ("beta_initializer", "beta_regularizer"),
            "running_mean": ("moving_mean_initializer", None),
            "running_var": ("moving_variance_initializer", None),
        },
    )
)
_register(LayerType("ZeroPadding2D", {"padding": 1, "data_format": None}, _zero_padding, _MAKERS["ZeroPadding2D"], (3,), 2))
_register(LayerType("ZeroPadding1D", {"padding": 1}, _zero_padding, _MAKERS["ZeroPadding1D"], (2,), 1))
_register(LayerType("Cropping2D", {"cropping": [[0, 0], [0, 0]], "data_format": None}, _cropping, _MAKERS["Cropping2D"], (3,), 2))
_register(LayerType("Cropping1D", {"cropping": [1, 1]}, _cropping, _MAKERS["Cropping1D"], (2,), 1))
_register(LayerType("Activation", {"activation": REQUIRED}, _same, _make_activation))
_register(LayerType("ReLU", {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}, _same, _MAKERS["ReLU"]))
_register(LayerType("LeakyReLU", {"negative_slope": 0.3}, _same, _MAKERS["LeakyReLU"]))
_register(LayerType("ELU", {"alpha": 1.0}, _same, _MAKERS["ELU"]))
_register(LayerType("Softmax", {"axis": -1}, _softmax, _MAKERS["Softmax"]))
_register(
    LayerType(
        "PReLU",
        {"alpha_initializer": "zeros", "alpha_regularizer": None, "shared_axes": None},
        _prelu,
        _make_prelu,
        weights={"weight": ("alpha_initializer", "alpha_regularizer")},
    )
)
for _name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"):
    _register(LayerType(_name, {}, _merge, _MAKERS[_name], merge=True))
_register(LayerType("Concatenate", {"axis": -1}, _concatenate, _MAKERS["Concatenate"], merge=True))

# Input is handled by the builder: it makes no module.
INPUT_TYPES = ("Input", "InputLayer")
COMMON_ARGS = ("type", "name", "inputs", "trainable", "dtype")
# Keras 2 spellings the notes use; mapped to the Keras 3 name of the same argument.
ARG_ALIASES = {"LeakyReLU": {"alpha": "negative_slope"}}


def rank_name(rank: int) -> str:
    return _spatial_rank_name(rank)
