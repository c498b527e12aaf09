"""The course notes' own networks (the convolution notes, the slides, the Keras lab, the textbook chapter, the lecture notes), written as cnnlab specs.

Each net is two specs built by :func:`cnnlab.spec.build`: the convolutional
stage (``model.features``, whose output is the last feature map) and the top
(``model.head``), so they have Keras's layers, defaults and counts.

================================  ======  ==========================================================
name                              seed    layers
================================  ======  ==========================================================
``fashion_mnist_practice``        002     conv 32@5x5 relu, max 2, conv 64@5x5 relu, max 2, flatten,
                                          dense 10 softmax (``hidden=64`` adds the suggested dense 64)
``mnist_3conv``                   003     conv 32/64/128@3x3 relu each + max 2, flatten, dense 10
                                          softmax: 93,962 parameters
``lenet_keras``                   003     conv 6@5x5 'same' sigmoid, avg 2, conv 16@5x5 sigmoid, avg 2,
                                          flatten, dense 120 / 84 sigmoid, dense 10 (logits, as written)
``cats_vs_dogs``                  004     64x64x3: conv 32@3x3 relu, max 2, conv 32@3x3 relu, max 2,
                                          flatten, dense 128 relu, dense 1 sigmoid
``allconv_mnist``                 000 P3  no pooling: each max pooling of mnist-style nets becomes a
                                          stride-2 3x3 conv (32, 32/2, 64, 64/2), flatten, dense 10
``bonet_simple``, ``bonet``       004     220x220: conv 96@7x7 (frozen), then 5x5 and 3x3 convs
                                          (1024; or 2048-1024-1024-1024), relu, each followed by max 2;
                                          dense 2048 relu, one linear output (regression)
================================  ======  ==========================================================

BoNet details the notes leave open: the frozen first layer "is OverFeat's", whose
first layer is 96 filters 7x7 with stride 2, so it has stride 2. The full BoNet
then ends on a 1x1x1024 map; the simple one would flatten 24x24x1024 values into
the 2048 units (1.2 billion weights), so ``bonet_simple`` pools globally before
its dense layer by default (``top='flatten'`` gives the literal, huge version).

Heads (the convolution notes' exercises P.4 / P.5): ``head='conv'`` replaces flatten + dense by
convolutions only: a conv whose kernel covers the whole last map (the dense
layer written as a convolution, same parameter count) with the hidden width and
ReLU, 1x1 convs for further layers, a last conv to the outputs, then flatten
(a reshape of 1x1xK) and the output activation: softmax for a classifier (P.4),
linear for a regressor (P.5, e.g. ``bonet`` or ``output_activation='linear'``).

Output activation (``output_activation``, default by the net): softmax for
classifiers with several classes; with ``num_classes=1`` a classifier outputs one
linear value (a one-unit softmax is constant), except ``cats_vs_dogs``, whose one
unit is a sigmoid as in the seed; BoNet is linear.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Unpack

from cnnlab.errors import CnnlabError
from cnnlab.models.base import CoreArgs, ZooModel, backbone_head, check_top_options
from cnnlab.models.registry import register

OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "linear")
HEADS = ("dense", "conv")


def conv(filters: int, kernel: int | list[int], **args: Any) -> dict[str, Any]:
    return {"type": "Conv2D", "filters": filters, "kernel_size": kernel, **args}


def maxpool(size: int = 2) -> dict[str, Any]:
    return {"type": "MaxPooling2D", "pool_size": size}


def _output_activation(name: str, chosen: str | None, default: str, num_classes: int) -> str:
    if chosen is None:
        return "linear" if default == "softmax" and num_classes == 1 else default
    if chosen not in OUTPUT_ACTIVATIONS:
        raise CnnlabError(
            f"unknown output_activation {chosen!r}",
            where=f"{name}: output_activation",
            fix="use 'softmax' (classes), 'sigmoid' (one binary unit) or 'linear' (logits or regression)",
        )
    return chosen


def _top_layers(
    name: str,
    head: str,
    feature_shape: tuple[int, ...],
    hidden: list[int],
    hidden_activation: str,
    outputs: int,
    activation: str,
    top: str,
) -> list[dict[str, Any]]:
    """The layers after the convolutional stage, in spec form."""
    act = None if activation == "linear" else activation
    if head == "dense":
        layers: list[dict[str, Any]] = [{"type": "GlobalAveragePooling2D"} if top == "gap" else {"type": "Flatten"}]
        layers += [{"type": "Dense", "units": units, "activation": hidden_activation} for units in hidden]
        layers.append({"type": "Dense", "units": outputs, "activation": act})
        return layers
    if head != "conv":
        raise CnnlabError(
            f"unknown head {head!r}",
            where=f"{name}: head",
            fix="use 'dense' (flatten + dense layers) or 'conv' (convolutions only, the convolution notes' exercises P.4 / P.5)",
        )
    height, width = feature_shape[0], feature_shape[1]
    layers = []
    if top == "gap":  # a global pooling first: the map is then 1x1
        layers.append({"type": "GlobalAveragePooling2D", "keepdims": True})
        height = width = 1
    widths = [*hidden, outputs]
    for index, units in enumerate(widths):
        kernel = [height, width] if index == 0 else [1, 1]
        last = index == len(widths) - 1
        layers.append(conv(units, kernel, activation=None if last else hidden_activation))
    layers.append({"type": "Flatten"})
    if act is not None:
        layers.append({"type": "Activation", "activation": act})
    return layers


def spec_net(
    name: str,
    conv_layers: list[dict[str, Any]],
    head: str,
    output_activation: str | None,
    pooling: str | None,
    *,
    hidden: list[int],
    default_activation: str = "softmax",
    hidden_activation: str = "relu",
    top: str = "flatten",
    num_classes: int,
    input_shape: tuple[int, int, int],
    include_top: bool,
) -> ZooModel:
    """A ZooModel whose features (``conv_layers``) and top (``hidden`` dense widths) are specs.

    ``head``, ``output_activation`` and ``pooling`` are the options every net of the notes
    takes, passed on as the user gave them (see the module's notes).
    """
    from cnnlab.spec import build, summary

    activation = _output_activation(name, output_activation, default_activation, num_classes)
    check_top_options(include_top, pooling)
    features = build({"name": f"{name}_features", "input_shape": list(input_shape), "layers": conv_layers})
    feature_shape = tuple(summary(features).layers[-1].output_shape)
    if include_top:
        top_layers = _top_layers(name, head, feature_shape, hidden, hidden_activation, num_classes, activation, top)
        head_module = build({"name": f"{name}_top", "input_shape": list(feature_shape), "layers": top_layers})
    else:
        head_module = backbone_head(pooling)
    return ZooModel(features, head_module, num_features=int(feature_shape[-1]))


@register(
    input_shape=(28, 28, 1), num_classes=10, min_size=16, params=62_346,
    reference="the Keras lab (Fashion-MNIST practice net)",
    description="Fashion-MNIST practice net: conv 32@5x5, pool, conv 64@5x5, pool, dense",
)
def fashion_mnist_practice(
    *,
    hidden: int = 0,
    head: str = "dense",
    output_activation: str | None = None,
    pooling: str | None = None,
    **core: Unpack[CoreArgs],
) -> ZooModel:
    """``hidden=64`` adds the dense 64 ReLU layer the seed suggests after Flatten."""
    layers = [conv(32, 5, activation="relu"), maxpool(), conv(64, 5, activation="relu"), maxpool()]
    hidden_layers = [hidden] if hidden else []
    return spec_net("fashion_mnist_practice", layers, head, output_activation, pooling, hidden=hidden_layers, **core)


@register(
    input_shape=(28, 28, 1), num_classes=10, min_size=22, params=93_962,
    reference="the textbook chapter (MNIST CNN, model.summary(): 93,962 parameters)",
    description="MNIST 3-conv net: conv 32/64/128@3x3 + max pooling, dense 10",
)
def mnist_3conv(*, head: str = "dense", output_activation: str | None = None, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """Three conv 3x3 + max pooling stages of 32, 64 and 128 filters, then the softmax layer."""
    layers = [layer for filters in (32, 64, 128) for layer in (conv(filters, 3, activation="relu"), maxpool())]
    return spec_net("mnist_3conv", layers, head, output_activation, pooling, hidden=[], **core)


@register(
    input_shape=(28, 28, 1), num_classes=10, min_size=12, params=61_706,
    reference="the textbook chapter (LeNet in Keras); LeCun et al. 1998",
    description="LeNet as the textbook chapter's Keras writes it: sigmoid, average pooling, dense 120-84-10",
)
def lenet_keras(*, head: str = "dense", output_activation: str | None = "linear", pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """The seed's last Dense(10) has no activation: the net outputs logits."""
    avg = {"type": "AveragePooling2D", "pool_size": 2, "strides": 2}
    layers = [conv(6, 5, activation="sigmoid", padding="same"), avg, conv(16, 5, activation="sigmoid"), avg]
    return spec_net(
        "lenet_keras", layers, head, output_activation, pooling, hidden=[120, 84], hidden_activation="sigmoid", **core
    )


@register(
    input_shape=(64, 64, 3), num_classes=1, min_size=10, params=813_217,
    reference="the lecture notes §5.1 (Keras cats vs dogs)",
    description="cats vs dogs: conv 32@3x3, pool, conv 32@3x3, pool, dense 128, one sigmoid unit",
)
def cats_vs_dogs(*, head: str = "dense", output_activation: str | None = None, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """One sigmoid unit (binary cross-entropy) by default; softmax for num_classes > 1."""
    layers = [conv(32, 3, activation="relu"), maxpool(), conv(32, 3, activation="relu"), maxpool()]
    default = "sigmoid" if core["num_classes"] == 1 else "softmax"
    return spec_net(
        "cats_vs_dogs", layers, head, output_activation, pooling, hidden=[128], default_activation=default, **core
    )


@register(
    input_shape=(28, 28, 1), num_classes=10, min_size=13, params=75_242,
    reference="the convolution notes, exercise P.3 (an MNIST CNN without max pooling)",
    description="all-convolutional MNIST net: stride-2 convolutions instead of max pooling",
)
def allconv_mnist(*, head: str = "dense", output_activation: str | None = None, pooling: str | None = None, **core: Unpack[CoreArgs]) -> ZooModel:
    """mnist-style convs 32, 32/2, 64, 64/2: each max pooling becomes a learned stride-2 3x3 conv."""
    layers = [
        conv(32, 3, activation="relu"),
        conv(32, 3, strides=2, activation="relu"),  # learned downsampling instead of max pooling
        conv(64, 3, activation="relu"),
        conv(64, 3, strides=2, activation="relu"),
    ]
    return spec_net("allconv_mnist", layers, head, output_activation, pooling, hidden=[], **core)


BONET_REFERENCE = "the lecture notes §5.2-5.3 (BoNet); Spampinato et al. 2017, Medical Image Analysis 36"
register_bonet = partial(register, input_shape=(220, 220, 1), num_classes=1, reference=BONET_REFERENCE)


def _bonet_layers(name: str, filters: list[int], top: str) -> list[dict[str, Any]]:
    """OverFeat's frozen 96@7x7/2 first layer, then 5x5 and 3x3 convs, each followed by max pooling."""
    if top not in ("flatten", "gap"):
        raise CnnlabError(
            f"unknown top {top!r}",
            where=f"{name}: top",
            fix="use 'flatten' (as the notes) or 'gap' (global average pooling before the dense layer)",
        )
    kernels = [7, 5] + [3] * (len(filters) - 2)
    layers: list[dict[str, Any]] = []
    for index, (units, kernel) in enumerate(zip(filters, kernels)):
        if index == 0:  # OverFeat's first layer: 96 filters 7x7, stride 2; frozen (the lecture notes)
            layers.append(conv(units, kernel, strides=2, activation="relu", trainable=False))
        else:
            layers.append(conv(units, kernel, activation="relu"))
        layers.append(maxpool())
    return layers


@register_bonet(
    min_size=29, params=4_564_673, trainable=4_559_873,
    description="BoNet simple (bone age regression): conv 96@7x7 (frozen), conv 1024@5x5, dense 2048, 1 output",
)
def bonet_simple(
    *, head: str = "dense", top: str = "gap", output_activation: str | None = None, pooling: str | None = None,
    **core: Unpack[CoreArgs],
) -> ZooModel:
    """BoNet simple: OverFeat's frozen layer, one 1024-filter conv, dense 2048, one output.

    Global average pooling before the dense layer by default: ``top='flatten'`` is the
    notes' literal top, whose dense layer has 1.2 billion weights at 220x220.
    """
    layers = _bonet_layers("bonet_simple", [96, 1024], top)
    return spec_net(
        "bonet_simple", layers, head, output_activation, pooling, hidden=[2048], default_activation="linear", top=top, **core
    )


@register_bonet(
    min_size=197, params=44_775_105, trainable=44_770_305,
    description="BoNet (bone age regression): convs 96 (frozen)-2048-1024-1024-1024, dense 2048, 1 output",
)
def bonet(
    *, head: str = "dense", top: str = "flatten", output_activation: str | None = None, pooling: str | None = None,
    **core: Unpack[CoreArgs],
) -> ZooModel:
    """The full BoNet: four convolutions after OverFeat's, down to a 1x1x1024 map before the dense 2048.

    With that small map the notes' flatten top stays small: it is the default here.
    """
    layers = _bonet_layers("bonet", [96, 2048, 1024, 1024, 1024], top)
    return spec_net(
        "bonet", layers, head, output_activation, pooling, hidden=[2048], default_activation="linear", top=top, **core
    )
