"""The layer types a spec may use: one :class:`LayerType` per Keras layer type, all of it in one place.

Shapes here are Keras's: channels-last, without the batch, e.g. (28, 28, 1),
(steps, channels) or (units,). As a Keras layer class keeps its argument
checks, ``compute_output_shape`` and ``get_config`` together, a layer type
holds everything :func:`cnnlab.spec.build` needs to know about one ``type:``:

- ``arguments``: Keras's arguments in Keras's order, each an :class:`Arg`
  (Keras's default, or :data:`REQUIRED`, and the check that normalises a value;
  the checks live in :mod:`cnnlab.spec.fields`);
- ``output_shape(ctx)``: the output shape from the input shapes, refusing what
  Keras refuses, plus sizes that would be empty (default: the input shape);
- ``build(ctx, out)``: the cnnlab.nn module that computes it on channels-first
  tensors;
- ``ranks`` (input ranks it accepts), ``merge`` (joins several inputs),
  ``aliases`` (Keras 2 spellings), ``weights`` (its tensors' initializer and
  regularizer arguments, in Keras's ``get_weights()`` order) and
  ``from_keras_weight`` (a Keras weight array in torch's layout).

Adding a layer type is one class here, registered with :func:`register` (the
class name is the spec's ``type:``; :data:`TYPES` is the one list of them)::

    @register
    class Rescaling(LayerType):
        \"\"\"keras.layers.Rescaling: x * scale + offset (the output shape is the input's: inherited).\"\"\"

        arguments = {"scale": Arg(REQUIRED, F.number), "offset": Arg(0.0, F.number)}

        def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
            return cnn.Rescaling(ctx.args["scale"], ctx.args["offset"])  # the module, written in cnnlab.nn

A family of variants (Conv1D / Conv2D, MaxPooling1D ...) is one class whose
``__init__`` takes the Keras name and the number of spatial axes, registered
once per variant: ``register(Convolution("Conv3D", 3, cnn.Conv3d))``. Nothing
else lists layer types: the builder, ``cnnlab.spec.LAYER_TYPES``
and :func:`~cnnlab.spec.set_keras_weights` read :data:`TYPES`. What a new type
must still get is a test: tests/spec/test_build.py's ONE_LAYER has to cover
every type (it fails until it does), and Keras types belong in the parity
fixtures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn, TypeVar, overload

import torch
from torch import nn

import cnnlab.nn as cnn
from cnnlab.nn.padding import output_length, transpose_output_length
from cnnlab.spec import fields as F
from cnnlab.spec.errors import fmt_shape

Shape = tuple[int, ...]
REQUIRED: Any = object()  # the default of an argument the spec must give (Dense's units)

# Input is handled by the builder: it makes no module.
INPUT_TYPES = ("Input", "InputLayer")
# Arguments every layer takes; the builder handles them, not the layer types.
COMMON_ARGS = ("type", "name", "inputs", "trainable", "dtype")


@dataclass(frozen=True)
class Arg:
    """One Keras argument of a layer type: its default (or REQUIRED) and the check that normalises a value."""

    default: Any
    check: F.Check


@dataclass
class LayerContext:
    """What a shape rule or builder sees: the normalised args, the input shapes, and ``fail``."""

    args: dict[str, Any]
    shapes: list[Shape]
    fail: Callable[[str | None, str, str], NoReturn]  # (field, message, fix): a SpecError naming the layer

    @property
    def shape(self) -> Shape:
        """The first input's shape: the only one of a single-input layer."""
        return self.shapes[0]


class LayerType:
    """One spec layer type; subclass it and :func:`register` it (see the module docstring).

    The class attributes are the defaults of a plain layer; a family's
    ``__init__`` sets them per variant. They are read, never changed.
    """

    arguments: Mapping[str, Arg] = {}
    aliases: Mapping[str, str] = {}  # Keras 2 argument spelling -> the Keras 3 argument it means
    ranks: tuple[int, ...] | None = None  # input ranks without the batch; None: any >= 1
    merge: bool = False  # joins two or more inputs (Add, Concatenate)
    # torch tensor name -> (initializer argument, regularizer argument), in Keras's get_weights() order
    weights: Mapping[str, tuple[str, str | None]] = {}

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__

    def coerce(self, argument: str, value: Any, fail: F.Fail) -> Any:
        """The normalised (JSON-safe) value of ``argument``, or ``fail(message, fix)``."""
        return self.arguments[argument].check(value, fail)

    def default(self, argument: str) -> Any:
        """The normalised Keras default of ``argument`` (checked at registration, so it cannot fail later)."""

        def invalid(message: str, fix: str) -> NoReturn:
            raise AssertionError(f"{self.name}: the default of {argument!r} fails its own check: {message}")

        return self.coerce(argument, self.arguments[argument].default, invalid)

    def complete(self, args: dict[str, Any]) -> None:
        """Fill in, in place, arguments whose Keras default depends on other arguments (pooling's strides)."""

    def output_shape(self, ctx: LayerContext) -> Shape:
        """The output shape (channels-last, no batch); ``ctx.fail`` on what Keras refuses. Default: unchanged."""
        return ctx.shape

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        """The cnnlab.nn module computing this layer on channels-first tensors; ``out`` is its output shape."""
        raise NotImplementedError(f"layer type {self.name} has no builder")

    def from_keras_weight(self, tensor_name: str, tensor: torch.Tensor) -> torch.Tensor:
        """A Keras weight array (as a tensor) in the layout of this layer's torch tensor ``tensor_name``."""
        return tensor


TYPES: dict[str, LayerType] = {}
_LayerTypeT = TypeVar("_LayerTypeT", bound=LayerType)


@overload
def register(layer_type: type[_LayerTypeT]) -> type[_LayerTypeT]: ...
@overload
def register(layer_type: _LayerTypeT) -> _LayerTypeT: ...
def register(layer_type: Any) -> Any:
    """Add a layer type to :data:`TYPES`: an instance (a family's variant), or a class (as a decorator: its one instance)."""
    layer = layer_type() if isinstance(layer_type, type) else layer_type
    if layer.name in TYPES:
        raise ValueError(f"layer type {layer.name!r} is registered twice")
    for argument, spec in layer.arguments.items():
        if spec.default is not REQUIRED:
            layer.default(argument)  # a wrong default fails at import, not in a user's build
    TYPES[layer.name] = layer
    return layer_type


def rank_name(rank: int) -> str:
    """What an input of ``rank`` axes (without the batch) is called in errors."""
    return {1: "a vector (units,)", 2: "a sequence (steps, channels)", 3: "an image (height, width, channels)"}.get(rank, f"a {rank}-D tensor")


# ---- arguments several layer types share (Keras's common vocabulary) ----------------------


def sizes(dims: int) -> F.Check:
    """An int or a list of ``dims`` positive ints (kernel_size, strides, pool_size ...): 3 -> [3, 3]."""
    return partial(F.int_tuple, n=dims)


CONV_PADDINGS = ("valid", "same")
PADDING = Arg("valid", partial(F.choice, options=CONV_PADDINGS))
DATA_FORMAT = Arg(None, F.channels_last)
ACTIVATION = Arg(None, F.activation)
USE_BIAS = Arg(True, F.boolean)
FRACTION = partial(F.number, low=0.0, high=1.0)
KERNEL_ARGUMENTS = {
    "kernel_initializer": Arg("glorot_uniform", F.initializer),
    "bias_initializer": Arg("zeros", F.initializer),
    "kernel_regularizer": Arg(None, F.regularizer),
    "bias_regularizer": Arg(None, F.regularizer),
}
KERNEL_WEIGHTS = {"weight": ("kernel_initializer", "kernel_regularizer"), "bias": ("bias_initializer", "bias_regularizer")}


def activation_module(ctx: LayerContext, out: Shape) -> nn.Module | None:
    """The module of a layer's ``activation`` argument, sized for its output; None for none / 'linear'."""
    spec = ctx.args.get("activation")
    if spec is None or spec == "linear":
        return None
    options = dict(spec) if isinstance(spec, dict) else {"type": spec}
    name = options.pop("type")
    return cnn.activation(name, channels=out[-1], rank=len(out), **options)


# ---- convolutions ---------------------------------------------------------------------------


class Convolution(LayerType):
    """Conv1D / Conv2D: Keras's output length per axis (padding, strides, dilation) and grouped channels."""

    weights = KERNEL_WEIGHTS
    axis_length = staticmethod(output_length)

    def __init__(self, name: str, dims: int, module: type[nn.Module], paddings: tuple[str, ...] = CONV_PADDINGS) -> None:
        super().__init__(name)
        self.dims = dims
        self.ranks = (dims + 1,)
        self.module = module
        self.arguments = {
            "filters": Arg(REQUIRED, F.positive_int),
            "kernel_size": Arg(REQUIRED, sizes(dims)),
            "strides": Arg(1, sizes(dims)),
            "padding": Arg("valid", partial(F.choice, options=paddings)),
            "data_format": DATA_FORMAT,
            "dilation_rate": Arg(1, sizes(dims)),
            "activation": ACTIVATION,
            "use_bias": USE_BIAS,
            **KERNEL_ARGUMENTS,
            "groups": Arg(1, F.positive_int),
        }

    def output_shape(self, ctx: LayerContext) -> Shape:
        a = ctx.args
        *spatial, channels = ctx.shape
        if max(a["strides"]) > 1 and max(a["dilation_rate"]) > 1:
            ctx.fail("strides", f"strides {a['strides']} > 1 together with dilation_rate {a['dilation_rate']} > 1 is not supported (Keras refuses it too)", "use strides 1 with dilation, or dilation 1 with strides")
        groups = a.get("groups", 1)
        if channels % groups or a["filters"] % groups:
            ctx.fail("groups", f"groups={groups} must divide both the input channels ({channels}, input shape {fmt_shape(ctx.shape)}) and filters ({a['filters']})", f"use a groups value that divides {channels} and {a['filters']}")
        out = []
        for axis, size in enumerate(spatial):
            length = self.axis_length(size, a["kernel_size"][axis], a["strides"][axis], a["padding"], a["dilation_rate"][axis])
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

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        a = ctx.args
        return self.module(ctx.shape[-1], a["filters"], a["kernel_size"], a["strides"], a["padding"], a["dilation_rate"], a["groups"], a["use_bias"], activation_module(ctx, out))

    def from_keras_weight(self, tensor_name: str, tensor: torch.Tensor) -> torch.Tensor:
        if tensor_name != "weight":
            return tensor
        # Keras (*kernel, in, out) -> torch (out, in, *kernel); a transposed kernel's (*kernel, out, in) likewise
        return tensor.permute(self.dims + 1, self.dims, *range(self.dims))


register(Convolution("Conv2D", 2, cnn.Conv2d))
register(Convolution("Conv1D", 1, cnn.Conv1d, paddings=(*CONV_PADDINGS, "causal")))


class TransposedConvolution(Convolution):
    """Conv2DTranspose: Keras's transposed output length; Keras gives it no groups."""

    axis_length = staticmethod(transpose_output_length)

    def __init__(self, name: str, dims: int, module: type[nn.Module]) -> None:
        super().__init__(name, dims, module)
        self.arguments = {key: spec for key, spec in self.arguments.items() if key != "groups"}

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        a = ctx.args
        return self.module(ctx.shape[-1], a["filters"], a["kernel_size"], a["strides"], a["padding"], a["dilation_rate"], a["use_bias"], activation_module(ctx, out))


register(TransposedConvolution("Conv2DTranspose", 2, cnn.ConvTranspose2d))


# ---- pooling -------------------------------------------------------------------------------


class Pooling(LayerType):
    """MaxPooling / AveragePooling 1D and 2D: Keras's output length per axis; strides default to pool_size."""

    def __init__(self, name: str, dims: int, module: type[nn.Module], pool_size: Any) -> None:
        super().__init__(name)
        self.dims = dims
        self.ranks = (dims + 1,)
        self.module = module
        self.arguments = {
            "pool_size": Arg(pool_size, sizes(dims)),
            "strides": Arg(None, F.optional(sizes(dims))),  # None: the pool_size, filled in by complete()
            "padding": PADDING,
            "data_format": DATA_FORMAT,
        }

    def complete(self, args: dict[str, Any]) -> None:
        if args["strides"] is None:
            args["strides"] = list(args["pool_size"])

    def output_shape(self, ctx: LayerContext) -> Shape:
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

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        a = ctx.args
        if self.dims == 1:
            return self.module(a["pool_size"][0], a["strides"][0], a["padding"])
        return self.module(tuple(a["pool_size"]), tuple(a["strides"]), a["padding"])


# Keras 3: MaxPooling has pool_size 2 by default, AveragePooling requires it.
register(Pooling("MaxPooling2D", 2, cnn.MaxPool2d, pool_size=2))
register(Pooling("AveragePooling2D", 2, cnn.AvgPool2d, pool_size=REQUIRED))
register(Pooling("MaxPooling1D", 1, cnn.MaxPool1d, pool_size=2))
register(Pooling("AveragePooling1D", 1, cnn.AvgPool1d, pool_size=REQUIRED))


class GlobalPooling(LayerType):
    """GlobalAveragePooling / GlobalMaxPooling 1D and 2D: one value per channel (keepdims: size-1 axes stay)."""

    arguments = {"data_format": DATA_FORMAT, "keepdims": Arg(False, F.boolean)}

    def __init__(self, name: str, dims: int, module: type[nn.Module]) -> None:
        super().__init__(name)
        self.ranks = (dims + 1,)
        self.module = module

    def output_shape(self, ctx: LayerContext) -> Shape:
        *spatial, channels = ctx.shape
        return (*([1] * len(spatial)), channels) if ctx.args["keepdims"] else (channels,)

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return self.module(ctx.args["keepdims"])


register(GlobalPooling("GlobalAveragePooling2D", 2, cnn.GlobalAvgPool))
register(GlobalPooling("GlobalMaxPooling2D", 2, cnn.GlobalMaxPool))
register(GlobalPooling("GlobalAveragePooling1D", 1, cnn.GlobalAvgPool))
register(GlobalPooling("GlobalMaxPooling1D", 1, cnn.GlobalMaxPool))


# ---- upsampling ----------------------------------------------------------------------------


class _Upsampling(LayerType):
    """What the upsampling layers share: every spatial axis times its factor in ``size``."""

    def output_shape(self, ctx: LayerContext) -> Shape:
        *spatial, channels = ctx.shape
        size = ctx.args["size"]
        factors = [size] if isinstance(size, int) else size
        return (*(s * f for s, f in zip(spatial, factors)), channels)


@register
class UpSampling2D(_Upsampling):
    arguments = {"size": Arg(2, sizes(2)), "data_format": DATA_FORMAT, "interpolation": Arg("nearest", partial(F.choice, options=cnn.UpSampling2d.INTERPOLATIONS))}
    ranks = (3,)

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return cnn.UpSampling2d(tuple(ctx.args["size"]), ctx.args["interpolation"])


@register
class UpSampling1D(_Upsampling):
    arguments = {"size": Arg(2, F.positive_int)}  # Keras's UpSampling1D size is one int, not a list
    ranks = (2,)

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return cnn.UpSampling1d(ctx.args["size"])


@register
class BedOfNailsUpSampling2D(_Upsampling):
    """Not Keras: the lecture notes' bed-of-nails unpooling (each value at the top-left of its block, zeros elsewhere)."""

    arguments = {"size": Arg(2, sizes(2))}
    ranks = (3,)

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return cnn.BedOfNailsUpsample(tuple(ctx.args["size"]))


# ---- core ----------------------------------------------------------------------------------


@register
class Dense(LayerType):
    arguments = {"units": Arg(REQUIRED, F.positive_int), "activation": ACTIVATION, "use_bias": USE_BIAS, **KERNEL_ARGUMENTS}
    weights = KERNEL_WEIGHTS

    def output_shape(self, ctx: LayerContext) -> Shape:
        return (*ctx.shape[:-1], ctx.args["units"])

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return cnn.Dense(ctx.shape[-1], ctx.args["units"], ctx.args["use_bias"], activation_module(ctx, out))

    def from_keras_weight(self, tensor_name: str, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.T if tensor_name == "weight" else tensor  # Keras (in, out) -> torch (out, in)


@register
class Flatten(LayerType):
    arguments = {"data_format": DATA_FORMAT}

    def output_shape(self, ctx: LayerContext) -> Shape:
        return (math.prod(ctx.shape),)

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return cnn.Flatten()


def _target_shape(value: Any, fail: F.Fail) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value or not all(F.is_int(v) and (v > 0 or v == -1) for v in value):
        fail(f"must be a list of positive sizes (one may be -1), got {value!r}", "write e.g. [7, 7, 64] (channels last, no batch)")
    if sum(v == -1 for v in value) > 1:
        fail(f"only one size may be -1, got {value!r}", "give every size but one")
    return [int(v) for v in value]


@register
class Reshape(LayerType):
    arguments = {"target_shape": Arg(REQUIRED, _target_shape)}

    def output_shape(self, ctx: LayerContext) -> Shape:
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

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return cnn.Reshape(out)


def _no_noise_shape(value: Any, fail: F.Fail) -> None:
    if value is not None:
        fail("a noise_shape is not supported", "remove noise_shape, or use SpatialDropout2D / SpatialDropout1D to drop whole channels")
    return None


@register
class Dropout(LayerType):
    arguments = {"rate": Arg(REQUIRED, FRACTION), "noise_shape": Arg(None, _no_noise_shape), "seed": Arg(None, F.seed)}
    module: type[nn.Module] = nn.Dropout

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return self.module(ctx.args["rate"])


@register
class SpatialDropout2D(Dropout):
    """Drops whole channels of an image."""

    arguments = {"rate": Arg(REQUIRED, FRACTION), "data_format": DATA_FORMAT, "seed": Arg(None, F.seed)}
    ranks = (3,)
    module = nn.Dropout2d


@register
class SpatialDropout1D(Dropout):
    """Drops whole channels of a sequence."""

    arguments = {"rate": Arg(REQUIRED, FRACTION), "seed": Arg(None, F.seed)}
    ranks = (2,)
    module = nn.Dropout1d


@register
class BatchNormalization(LayerType):
    arguments = {
        "axis": Arg(-1, F.axis),
        "momentum": Arg(0.99, FRACTION),
        "epsilon": Arg(0.001, partial(F.number, low=0.0)),
        "center": Arg(True, F.boolean),
        "scale": Arg(True, F.boolean),
        "beta_initializer": Arg("zeros", F.initializer),
        "gamma_initializer": Arg("ones", F.initializer),
        "moving_mean_initializer": Arg("zeros", F.initializer),
        "moving_variance_initializer": Arg("ones", F.initializer),
        "beta_regularizer": Arg(None, F.regularizer),
        "gamma_regularizer": Arg(None, F.regularizer),
    }
    weights = {
        "weight": ("gamma_initializer", "gamma_regularizer"),
        "bias": ("beta_initializer", "beta_regularizer"),
        "running_mean": ("moving_mean_initializer", None),
        "running_var": ("moving_variance_initializer", None),
    }

    def output_shape(self, ctx: LayerContext) -> Shape:
        if ctx.args["axis"] not in (-1, len(ctx.shape)):
            ctx.fail("axis", f"only the channel axis (-1) is supported, got {ctx.args['axis']}", "use axis: -1")
        return ctx.shape

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        a = ctx.args
        return cnn.BatchNorm(ctx.shape[-1], a["momentum"], a["epsilon"], a["center"], a["scale"])


# ---- padding and cropping ------------------------------------------------------------------


class _Border(LayerType):
    """What ZeroPadding and Cropping share: amounts [before, after] per spatial axis, in the argument ``border``."""

    border: str  # the argument's name

    def __init__(self, name: str, dims: int, module: type[nn.Module], default: Any) -> None:
        super().__init__(name)
        self.dims = dims
        self.ranks = (dims + 1,)
        self.module = module
        amounts = Arg(default, partial(F.padding_pairs, ndim=dims, what=self.border))
        # Keras's 1-D padding and cropping layers take no data_format.
        self.arguments = {self.border: amounts, "data_format": DATA_FORMAT} if dims == 2 else {self.border: amounts}

    def pairs(self, ctx: LayerContext) -> list[list[int]]:
        """[before, after] for each spatial axis."""
        amounts = ctx.args[self.border]
        return [amounts] if self.dims == 1 else amounts

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return self.module(ctx.args[self.border])


class ZeroPadding(_Border):
    """ZeroPadding1D / 2D: zeros added before and after each spatial axis."""

    border = "padding"

    def output_shape(self, ctx: LayerContext) -> Shape:
        *spatial, channels = ctx.shape
        return (*(s + before + after for s, (before, after) in zip(spatial, self.pairs(ctx))), channels)


register(ZeroPadding("ZeroPadding2D", 2, cnn.ZeroPadding2d, default=1))
register(ZeroPadding("ZeroPadding1D", 1, cnn.ZeroPadding1d, default=1))


class Cropping(_Border):
    """Cropping1D / 2D: rows / steps removed before and after each spatial axis; something must be left."""

    border = "cropping"

    def output_shape(self, ctx: LayerContext) -> Shape:
        *spatial, channels = ctx.shape
        out = []
        for s, (before, after) in zip(spatial, self.pairs(ctx)):
            if before + after >= s:
                ctx.fail("cropping", f"cropping {ctx.args['cropping']} removes the whole input {fmt_shape(ctx.shape)}", "crop less than the input size on every axis")
            out.append(s - before - after)
        return (*out, channels)


register(Cropping("Cropping2D", 2, cnn.Cropping2d, default=[[0, 0], [0, 0]]))
register(Cropping("Cropping1D", 1, cnn.Cropping1d, default=[1, 1]))


# ---- activations ---------------------------------------------------------------------------


@register
class Activation(LayerType):
    arguments = {"activation": Arg(REQUIRED, F.activation)}

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return activation_module(ctx, out) or nn.Identity()


@register
class ReLU(LayerType):
    arguments = {"max_value": Arg(None, F.optional(partial(F.number, low=0.0))), "negative_slope": Arg(0.0, F.number), "threshold": Arg(0.0, F.number)}

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return cnn.KerasReLU(ctx.args["max_value"], ctx.args["negative_slope"], ctx.args["threshold"])


@register
class LeakyReLU(LayerType):
    arguments = {"negative_slope": Arg(0.3, F.number)}
    aliases = {"alpha": "negative_slope"}  # the Keras 2 spelling the notes use

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return nn.LeakyReLU(ctx.args["negative_slope"])


@register
class ELU(LayerType):
    arguments = {"alpha": Arg(1.0, F.number)}

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return nn.ELU(ctx.args["alpha"])


@register
class Softmax(LayerType):
    arguments = {"axis": Arg(-1, F.axis)}

    def output_shape(self, ctx: LayerContext) -> Shape:
        if ctx.args["axis"] != -1:
            ctx.fail("axis", f"only axis -1 (the channels) is supported, got {ctx.args['axis']}", "use axis: -1")
        return ctx.shape

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return cnn.Softmax()


def _shared_axes(value: Any, fail: F.Fail) -> list[int] | None:
    if value is None:
        return None
    axes = [value] if F.is_int(value) else value
    if not isinstance(axes, (list, tuple)) or not all(F.is_int(a) and a >= 1 for a in axes):
        fail(f"must be a list of Keras axes >= 1 (1, 2 = height, width), got {value!r}", "write e.g. [1, 2] for one alpha per channel")
    return sorted(int(a) for a in axes)


@register
class PReLU(LayerType):
    """A learned slope per value below zero; ``shared_axes`` share one slope along those axes."""

    arguments = {"alpha_initializer": Arg("zeros", F.initializer), "alpha_regularizer": Arg(None, F.regularizer), "shared_axes": Arg(None, _shared_axes)}
    weights = {"weight": ("alpha_initializer", "alpha_regularizer")}

    def output_shape(self, ctx: LayerContext) -> Shape:
        for axis in ctx.args["shared_axes"] or []:
            if axis > len(ctx.shape):
                ctx.fail("shared_axes", f"axis {axis} does not exist in input {fmt_shape(ctx.shape)}", f"use axes between 1 and {len(ctx.shape)}")
        return ctx.shape

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        keras_shape = [1 if (axis + 1) in (ctx.args["shared_axes"] or []) else d for axis, d in enumerate(ctx.shape)]
        torch_shape = [keras_shape[-1], *keras_shape[:-1]]
        return cnn.PReLU(torch_shape, init=0.0)

    def from_keras_weight(self, tensor_name: str, tensor: torch.Tensor) -> torch.Tensor:
        if tensor_name == "weight" and tensor.dim() > 1:
            return tensor.movedim(-1, 0)  # Keras alpha (..., C) -> (C, ...)
        return tensor


# ---- merging -------------------------------------------------------------------------------


class Merge(LayerType):
    """Add / Subtract / Multiply / Average / Maximum / Minimum: elementwise over inputs of one shape."""

    merge = True

    def __init__(self, name: str, module: type[nn.Module]) -> None:
        super().__init__(name)
        self.module = module

    def output_shape(self, ctx: LayerContext) -> Shape:
        first = ctx.shapes[0]
        for shape in ctx.shapes[1:]:
            if shape != first:
                shapes = ", ".join(fmt_shape(s) for s in ctx.shapes)
                ctx.fail("inputs", f"{self.name} needs inputs of the same shape, got {shapes}", "make the branches agree: a 1x1 Conv2D to match channels, strides / pooling to match sizes")
        return first

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return self.module()


register(Merge("Add", cnn.Add))
register(Merge("Subtract", cnn.Subtract))
register(Merge("Multiply", cnn.Multiply))
register(Merge("Average", cnn.Average))
register(Merge("Maximum", cnn.Maximum))
register(Merge("Minimum", cnn.Minimum))


@register
class Concatenate(LayerType):
    """Joins inputs along ``axis`` (Keras's index, batch = 0); they must agree on every other axis."""

    arguments = {"axis": Arg(-1, F.axis)}
    merge = True

    def output_shape(self, ctx: LayerContext) -> Shape:
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

    def build(self, ctx: LayerContext, out: Shape) -> nn.Module:
        return cnn.Concatenate(ctx.args["axis"])
