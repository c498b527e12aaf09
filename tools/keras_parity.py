"""Generate the Keras parity fixtures that tests/spec reads (Keras is never imported by tests).

Usage (from the repository root):

    python3 tools/keras_parity.py            # creates .venv-keras if needed, then writes the fixtures

It writes, under tests/spec/fixtures/:

- keras_models.json: random Sequential CNNs mixing every layer type, a few
  functional graphs (residual / inception blocks), specs Keras refuses, and the
  notes' seed nets. For each: the spec (cnnlab's format, Keras names), Keras's
  per-layer name, type, output shape, parameter count, trainable flag, the three
  totals, and for the seed nets the table Keras prints.
- keras_numeric.json: Conv2D, MaxPooling2D and AveragePooling2D outputs for
  'valid' / 'same', strides 1-3, odd and even sizes, with the input, kernel and
  bias used.

Deterministic for a given Keras version (seeded). Runs in its own virtual
environment because TensorFlow is a parity peer, never a dependency.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv-keras"
FIXTURES = REPO / "tests" / "spec" / "fixtures"
N_SEQUENTIAL = 320
N_GRAPHS = 40
N_REFUSED = 60


def ensure_keras() -> None:
    """Re-run this script inside .venv-keras (created with tensorflow-cpu + keras) unless keras imports."""
    try:
        import keras  # noqa: F401

        return
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "tensorflow-cpu", "keras"], check=True)
    os.execv(str(python), [str(python), *sys.argv])


# ---- random specs -------------------------------------------------------------------------

ACTIVATIONS = ["relu", "sigmoid", "tanh", "softmax", "elu", "gelu", "swish", "linear", "relu6", "selu", "softplus", "leaky_relu", None]
INITIALIZERS = ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "zeros", "ones", "random_normal"]


def _k(rng: random.Random, low: int, high: int, two: bool) -> Any:
    """An int, or (for 2-D) sometimes a pair."""
    if two and rng.random() < 0.3:
        return [rng.randint(low, high), rng.randint(low, high)]
    return rng.randint(low, high)


def _common(rng: random.Random, layer: dict[str, Any]) -> dict[str, Any]:
    if rng.random() < 0.1:
        layer["trainable"] = False
    return layer


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def random_layer(rng: random.Random, shape: tuple[int, ...]) -> dict[str, Any]:
    """One random layer for an input of Keras shape ``shape`` (channels last, no batch)."""
    rank = len(shape)
    common = ["BatchNormalization", "Dropout", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Dense", "Flatten", "Reshape"]
    if rank == 3:
        pool = ["Conv2D"] * 6 + ["Conv2DTranspose", "MaxPooling2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "UpSampling2D", "ZeroPadding2D", "Cropping2D", "SpatialDropout2D"] + common
    elif rank == 2:
        pool = ["Conv1D"] * 3 + ["MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "UpSampling1D", "ZeroPadding1D", "Cropping1D", "SpatialDropout1D"] + common
    else:
        pool = ["Dense"] * 3 + ["BatchNormalization", "Dropout", "Activation", "PReLU", "LeakyReLU", "Reshape"]
    kind = rng.choice(pool)
    channels = shape[-1]
    two = rank == 3
    if kind in ("Conv2D", "Conv1D", "Conv2DTranspose"):
        filters = rng.choice([2, 3, 4, 6, 8, 12, 16])
        layer: dict[str, Any] = {"type": kind, "filters": filters, "kernel_size": _k(rng, 1, 5, two)}
        if rng.random() < 0.5:
            layer["padding"] = rng.choice(["valid", "same"] + (["causal"] if kind == "Conv1D" else []))
        if rng.random() < 0.4:
            layer["strides"] = _k(rng, 1, 3, two)
        elif rng.random() < 0.2:
            layer["dilation_rate"] = _k(rng, 1, 3, two)
        if kind != "Conv2DTranspose" and rng.random() < 0.2:
            common_divisors = [d for d in _divisors(channels) if filters % d == 0]
            layer["groups"] = rng.choice(common_divisors)
        if rng.random() < 0.6:
            layer["activation"] = rng.choice(ACTIVATIONS)
        if rng.random() < 0.15:
            layer["use_bias"] = False
        if rng.random() < 0.2:
            layer["kernel_initializer"] = rng.choice(INITIALIZERS)
        if rng.random() < 0.1:
            layer["kernel_regularizer"] = rng.choice(["l1", "l2"])
        return _common(rng, layer)
    if kind.startswith(("MaxPooling", "AveragePooling")):
        layer = {"type": kind}
        if rng.random() < 0.6:
            layer["pool_size"] = _k(rng, 1, 4, two)
        if rng.random() < 0.4:
            layer["strides"] = _k(rng, 1, 3, two)
        if rng.random() < 0.5:
            layer["padding"] = rng.choice(["valid", "same"])
        return layer
    if kind.startswith("Global"):
        return {"type": kind, "keepdims": rng.random() < 0.3}
    if kind == "UpSampling2D":
        layer = {"type": kind, "size": _k(rng, 1, 3, True)}
        if rng.random() < 0.4:
            layer["interpolation"] = rng.choice(["nearest", "bilinear"])
        return layer
    if kind == "UpSampling1D":
        return {"type": kind, "size": rng.randint(1, 3)}
    if kind in ("ZeroPadding2D", "Cropping2D"):
        key = "padding" if kind.startswith("Zero") else "cropping"
        form = rng.randint(0, 2)
        value: Any = rng.randint(0, 2) if form == 0 else ([rng.randint(0, 2), rng.randint(0, 2)] if form == 1 else [[rng.randint(0, 2), rng.randint(0, 2)], [rng.randint(0, 2), rng.randint(0, 2)]])
        return {"type": kind, key: value}
    if kind in ("ZeroPadding1D", "Cropping1D"):
        key = "padding" if kind.startswith("Zero") else "cropping"
        return {"type": kind, key: rng.randint(0, 2) if rng.random() < 0.5 else [rng.randint(0, 2), rng.randint(0, 2)]}
    if kind in ("SpatialDropout2D", "SpatialDropout1D", "Dropout"):
        return {"type": kind, "rate": round(rng.uniform(0, 0.6), 2)}
    if kind == "BatchNormalization":
        layer = {"type": kind}
        if rng.random() < 0.2:
            layer["center"] = False
        if rng.random() < 0.2:
            layer["scale"] = False
        if rng.random() < 0.3:
            layer["momentum"] = 0.9
        return _common(rng, layer)
    if kind == "Activation":
        return {"type": kind, "activation": rng.choice([a for a in ACTIVATIONS if a])}
    if kind == "ReLU":
        return {"type": kind, "max_value": rng.choice([None, 6.0])}
    if kind == "LeakyReLU":
        return {"type": kind, "negative_slope": rng.choice([0.1, 0.3])}
    if kind == "ELU":
        return {"type": kind}
    if kind == "Softmax":
        return {"type": kind}
    if kind == "PReLU":
        layer = {"type": kind}
        if rank > 1 and rng.random() < 0.6:
            layer["shared_axes"] = list(range(1, rank))
        return _common(rng, layer)
    if kind == "Dense":
        layer = {"type": kind, "units": rng.choice([1, 4, 10, 16, 32, 64])}
        if rng.random() < 0.6:
            layer["activation"] = rng.choice(ACTIVATIONS)
        if rng.random() < 0.1:
            layer["use_bias"] = False
        if rng.random() < 0.1:
            layer["bias_regularizer"] = "l2"
        return _common(rng, layer)
    if kind == "Flatten":
        return {"type": kind}
    # Reshape: image <-> sequence <-> vector, keeping the number of values
    total = 1
    for d in shape:
        total *= d
    if rank == 3:
        target = rng.choice([[shape[0] * shape[1], channels], [shape[0], shape[1] * channels], [-1]])
    elif rank == 2:
        target = rng.choice([[shape[0], 1, channels], [-1], [shape[0] * channels, 1]])
    else:
        target = rng.choice([[total, 1], [1, 1, total], [-1, 1]])
    return {"type": "Reshape", "target_shape": target}


def _shape_ok(shape: tuple[Any, ...]) -> bool:
    return all(isinstance(d, int) and 0 < d <= 4096 for d in shape) and len(shape) <= 3


def keras_layer(keras: Any, config: dict[str, Any]) -> Any:
    args = {k: v for k, v in config.items() if k not in ("type", "inputs")}
    for key in ("kernel_size", "strides", "pool_size", "dilation_rate", "size", "target_shape", "shared_axes"):
        if isinstance(args.get(key), list):
            args[key] = tuple(args[key])
    for key in ("padding", "cropping"):
        if isinstance(args.get(key), list):
            args[key] = tuple(tuple(v) if isinstance(v, list) else v for v in args[key])
    return getattr(keras.layers, config["type"])(**args)


def record_model(keras: Any, model: Any, graph: bool) -> dict[str, Any]:
    import numpy as np

    rows = []
    for layer in model.layers:
        output = layer.output
        rows.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": list(output.shape[1:]),
                "params": int(layer.count_params()),
                "trainable": bool(layer.trainable),
            }
        )
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    if graph:  # Keras lists the input layer of a functional model
        rows.insert(0, {"name": model.inputs[0]._keras_history.operation.name, "type": "InputLayer", "output_shape": list(model.inputs[0].shape[1:]), "params": 0, "trainable": True})
    return {"layers": rows, "total_params": trainable + frozen, "trainable_params": trainable, "non_trainable_params": frozen}


def random_sequential(keras: Any, rng: random.Random, refused: list[dict[str, Any]]) -> dict[str, Any] | None:
    height, width = rng.randint(6, 40), rng.randint(6, 40)
    shape: tuple[int, ...] = (height, width, rng.choice([1, 2, 3, 4]))
    spec: dict[str, Any] = {"input_shape": list(shape), "layers": []}
    tensor = keras.Input(shape)
    target = rng.randint(3, 10)
    tries = 0
    while len(spec["layers"]) < target and tries < 40:
        tries += 1
        config = random_layer(rng, shape)
        try:
            out = keras_layer(keras, config)(tensor)
        except Exception as error:  # Keras refuses: keep a few as refusal cases
            if len(refused) < N_REFUSED and rng.random() < 0.5:
                refused.append({"spec": {"input_shape": spec["input_shape"], "layers": [*spec["layers"], config]}, "keras_error": str(error).splitlines()[0][:300]})
            continue
        new_shape = tuple(out.shape[1:])
        if not _shape_ok(new_shape):
            continue
        spec["layers"].append(config)
        tensor, shape = out, new_shape
    if not spec["layers"]:
        return None
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input(tuple(spec["input_shape"]))] + [keras_layer(keras, c) for c in spec["layers"]])
    return {"spec": spec, "keras": record_model(keras, model, graph=False)}


def random_graph(keras: Any, rng: random.Random, index: int) -> dict[str, Any]:
    """Residual and inception blocks, written as named layers with inputs."""
    size, channels = rng.choice([8, 12, 16, 20]), rng.choice([3, 4])
    layers: list[dict[str, Any]] = [{"type": "Input", "name": "input_layer", "shape": [size, size, channels]}]
    last, width = "input_layer", channels
    n = 0

    def add(layer: dict[str, Any]) -> str:
        nonlocal n
        n += 1
        layer["name"] = layer.get("name") or f"{layer['type'].lower()}_{n}"
        layers.append(layer)
        return layer["name"]

    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.5:  # residual block (projection when the width changes)
            filters = rng.choice([width, 8])
            a = add({"type": "Conv2D", "filters": filters, "kernel_size": 3, "padding": "same", "activation": "relu", "inputs": [last]})
            b = add({"type": "Conv2D", "filters": filters, "kernel_size": 3, "padding": "same", "inputs": [a]})
            if rng.random() < 0.5:
                b = add({"type": "BatchNormalization", "inputs": [b]})
            skip = last if filters == width else add({"type": "Conv2D", "filters": filters, "kernel_size": 1, "inputs": [last]})
            last = add({"type": rng.choice(["Add", "Add", "Average", "Maximum", "Minimum", "Multiply", "Subtract"]), "inputs": [b, skip]})
            last = add({"type": "Activation", "activation": "relu", "inputs": [last]})
            width = filters
        else:  # inception block
            f1, f3, f5, fp = (rng.choice([2, 4, 6]) for _ in range(4))
            b1 = add({"type": "Conv2D", "filters": f1, "kernel_size": 1, "activation": "relu", "inputs": [last]})
            b3 = add({"type": "Conv2D", "filters": f3, "kernel_size": 3, "padding": "same", "inputs": [add({"type": "Conv2D", "filters": 4, "kernel_size": 1, "inputs": [last]})]})
            b5 = add({"type": "Conv2D", "filters": f5, "kernel_size": 5, "padding": "same", "inputs": [last]})
            bp = add({"type": "Conv2D", "filters": fp, "kernel_size": 1, "inputs": [add({"type": "MaxPooling2D", "pool_size": 3, "strides": 1, "padding": "same", "inputs": [last]})]})
            last = add({"type": "Concatenate", "inputs": [b1, b3, b5, bp]})
            width = f1 + f3 + f5 + fp
    last = add({"type": "GlobalAveragePooling2D", "inputs": [last]})
    add({"type": "Dense", "units": 10, "activation": "softmax", "inputs": [last]})
    keras.backend.clear_session()
    tensors: dict[str, Any] = {}
    for layer in layers:
        if layer["type"] == "Input":
            tensors[layer["name"]] = keras.Input(tuple(layer["shape"]), name=layer["name"])
            continue
        ins = [tensors[i] for i in layer["inputs"]]
        tensors[layer["name"]] = keras_layer(keras, layer)(ins if len(ins) > 1 else ins[0])
    model = keras.Model(tensors["input_layer"], tensors[layers[-1]["name"]], name=f"graph_{index}")
    return {"spec": {"name": f"graph_{index}", "layers": layers}, "keras": record_model(keras, model, graph=True)}


def handmade_refusals() -> list[dict[str, Any]]:
    """Specs Keras refuses for the reasons the issue lists (checked against Keras below)."""
    return [
        {"input_shape": [3, 3, 1], "layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 5}]},
        {"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Conv2D", "filters": 2, "kernel_size": 3}]},
        {"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "MaxPooling2D"}]},
        {"input_shape": [8, 8, 3], "layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 3, "groups": 2}]},
        {"input_shape": [8, 8, 3], "layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 3, "strides": 2, "dilation_rate": 2}]},
        {"input_shape": [8, 8, 3], "layers": [{"type": "Conv2D", "filters": -1, "kernel_size": 3}]},
        {"input_shape": [8, 8, 3], "layers": [{"type": "Cropping2D", "cropping": [[4, 4], [0, 0]]}]},
        {"input_shape": [8, 8, 3], "layers": [{"type": "Reshape", "target_shape": [7, 7, 3]}]},
        {"input_shape": [8, 8, 3], "layers": [{"type": "GlobalAveragePooling2D"}, {"type": "GlobalAveragePooling2D"}]},
        {"input_shape": [8, 3], "layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 3}]},
    ]


def seed_nets() -> list[dict[str, Any]]:
    """The notes' nets (seed 002 Fashion-MNIST practice net, 003 MNIST net, 004 cats vs dogs)."""
    return [
        {
            "seed": "002 Fashion-MNIST practice net",
            "file": "fashion_mnist_practice.yaml",
            "spec": {
                "input_shape": [28, 28, 1],
                "layers": [
                    {"type": "Conv2D", "filters": 32, "kernel_size": [5, 5], "activation": "relu"},
                    {"type": "MaxPooling2D", "pool_size": [2, 2]},
                    {"type": "Conv2D", "filters": 64, "kernel_size": [5, 5], "activation": "relu"},
                    {"type": "MaxPooling2D", "pool_size": [2, 2]},
                    {"type": "Flatten"},
                    {"type": "Dense", "units": 10, "activation": "softmax"},
                ],
            },
        },
        {
            "seed": "003 MNIST net (93,962 params)",
            "file": "mnist_3conv.yaml",
            "spec": {
                "input_shape": [28, 28, 1],
                "layers": [
                    {"type": "Conv2D", "filters": 32, "kernel_size": [3, 3], "activation": "relu", "strides": [1, 1], "padding": "valid"},
                    {"type": "MaxPooling2D"},
                    {"type": "Conv2D", "filters": 64, "kernel_size": [3, 3], "activation": "relu", "strides": [1, 1], "padding": "valid"},
                    {"type": "MaxPooling2D"},
                    {"type": "Conv2D", "filters": 128, "kernel_size": [3, 3], "activation": "relu", "strides": [1, 1], "padding": "valid"},
                    {"type": "MaxPooling2D"},
                    {"type": "Flatten"},
                    {"type": "Dense", "units": 10, "activation": "softmax"},
                ],
            },
        },
        {
            "seed": "004 cats vs dogs net",
            "file": "cats_vs_dogs.yaml",
            "spec": {
                "input_shape": [64, 64, 3],
                "layers": [
                    {"type": "Conv2D", "filters": 32, "kernel_size": [3, 3], "activation": "relu"},
                    {"type": "MaxPooling2D", "pool_size": [2, 2]},
                    {"type": "Conv2D", "filters": 32, "kernel_size": [3, 3], "activation": "relu"},
                    {"type": "MaxPooling2D", "pool_size": [2, 2]},
                    {"type": "Flatten"},
                    {"type": "Dense", "units": 128, "activation": "relu"},
                    {"type": "Dense", "units": 1, "activation": "sigmoid"},
                ],
            },
        },
    ]


def keras_summary_text(model: Any) -> str:
    lines: list[str] = []
    model.summary(line_length=88, print_fn=lambda text, line_break=True: lines.append(text))
    return "".join(lines)


def models_fixture(keras: Any) -> dict[str, Any]:
    rng = random.Random(20240604)
    refused_random: list[dict[str, Any]] = []
    sequential = []
    while len(sequential) < N_SEQUENTIAL:
        entry = random_sequential(keras, rng, refused_random)
        if entry is not None:
            sequential.append(entry)
    graphs = [random_graph(keras, rng, i) for i in range(N_GRAPHS)]
    refused = []
    for spec in handmade_refusals():
        keras.backend.clear_session()
        try:
            keras.Sequential([keras.Input(tuple(spec["input_shape"]))] + [keras_layer(keras, c) for c in spec["layers"]])
        except Exception as error:
            refused.append({"spec": spec, "keras_error": str(error).splitlines()[0][:300]})
        else:
            print(f"warning: Keras accepts {spec}", file=sys.stderr)
    seeds = []
    for net in seed_nets():
        keras.backend.clear_session()
        spec = net["spec"]
        model = keras.Sequential([keras.Input(tuple(spec["input_shape"]))] + [keras_layer(keras, c) for c in spec["layers"]])
        seeds.append({**net, "keras": record_model(keras, model, graph=False), "keras_text": keras_summary_text(model)})
    import tensorflow as tf

    return {
        "generator": "tools/keras_parity.py",
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "sequential": sequential,
        "graphs": graphs,
        "refused": refused + refused_random,
        "seed_nets": seeds,
    }


# ---- numeric outputs ----------------------------------------------------------------------

def _rounded(array: Any) -> Any:
    return [round(float(v), 3) for v in array.reshape(-1)]


def numeric_fixture(keras: Any) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(7)
    cases = []
    sizes = [(5, 5), (6, 6), (7, 4)]
    for layer_type in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
        for padding in ("valid", "same"):
            for strides, dilation in ((1, 1), (1, 2), (2, 1), (3, 1)):
                if dilation > 1 and layer_type != "Conv2D":
                    continue
                for size in sizes:
                    for kernel in ((2, 2), (3, 3), (3, 2)):
                        x = np.round(rng.uniform(-1, 1, (1, *size, 2)), 3).astype("float32")
                        case: dict[str, Any] = {"type": layer_type, "padding": padding, "strides": strides, "input_shape": [1, *size, 2], "input": _rounded(x)}
                        if layer_type == "Conv2D":
                            span = [dilation * (k - 1) + 1 for k in kernel]
                            if padding == "valid" and (span[0] > size[0] or span[1] > size[1]):
                                continue
                            layer = keras.layers.Conv2D(3, kernel, strides=strides, padding=padding, dilation_rate=dilation)
                            layer.build((1, *size, 2))
                            kernel_values = np.round(rng.uniform(-1, 1, (*kernel, 2, 3)), 3).astype("float32")
                            bias = np.round(rng.uniform(-1, 1, (3,)), 3).astype("float32")
                            layer.set_weights([kernel_values, bias])
                            case.update({"filters": 3, "kernel_size": list(kernel), "dilation_rate": dilation, "kernel_shape": list(kernel_values.shape), "kernel": _rounded(kernel_values), "bias": _rounded(bias)})
                        else:
                            layer = getattr(keras.layers, layer_type)(pool_size=kernel, strides=strides, padding=padding)
                            case["pool_size"] = list(kernel)
                        y = np.asarray(layer(x))
                        case["output_shape"] = list(y.shape)
                        case["output"] = [float(f"{v:.7g}") for v in y.reshape(-1)]
                        cases.append(case)
    cases.extend(_more_numeric_cases(keras, rng))
    return {"generator": "tools/keras_parity.py", "keras_version": keras.__version__, "layout": "NHWC input/output; Keras weights in Keras layout", "cases": cases}


def _more_numeric_cases(keras: Any, rng: Any) -> list[dict[str, Any]]:
    """Conv2DTranspose, bilinear UpSampling2D, Flatten + Dense order, BatchNormalization inference.

    Each case: a one- or two-layer spec, the Keras weights per layer (Keras layout), input, output.
    """
    import numpy as np

    def uniform(*shape: int) -> Any:
        return np.round(rng.uniform(-1, 1, shape), 3).astype("float32")

    specs: list[tuple[list[int], list[dict[str, Any]]]] = []
    for padding in ("valid", "same"):
        for strides in (1, 2, 3):
            for kernel in (1, 2, 3):
                specs.append(([4, 3, 2], [{"type": "Conv2DTranspose", "filters": 3, "kernel_size": kernel, "strides": strides, "padding": padding}]))
    for size in ([2, 2], [3, 2]):
        specs.append(([5, 4, 2], [{"type": "UpSampling2D", "size": size, "interpolation": "bilinear"}]))
    specs.append(([3, 4, 2], [{"type": "Flatten"}, {"type": "Dense", "units": 3}]))
    specs.append(([3, 4, 2], [{"type": "BatchNormalization"}]))
    cases = []
    for input_shape, layers in specs:
        keras.backend.clear_session()
        model = keras.Sequential([keras.Input(tuple(input_shape))] + [keras_layer(keras, c) for c in layers])
        weights = []
        for layer in model.layers:
            values = [uniform(*w.shape) for w in layer.get_weights()]
            if layer.__class__.__name__ == "BatchNormalization":
                values[3] = np.abs(values[3]) + 0.5  # a variance is positive
            layer.set_weights(values)
            weights.append([{"shape": list(v.shape), "values": _rounded(v)} for v in values])
        x = uniform(1, *input_shape)
        y = np.asarray(model(x, training=False))
        cases.append(
            {
                "type": "+".join(c["type"] for c in layers),
                "spec": {"input_shape": input_shape, "layers": layers},
                "weights": weights,
                "input_shape": [1, *input_shape],
                "input": _rounded(x),
                "output_shape": list(y.shape),
                "output": [float(f"{v:.7g}") for v in y.reshape(-1)],
            }
        )
    return cases


def main() -> None:
    ensure_keras()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["COLUMNS"] = "200"  # Keras caps its table at the terminal width - 4
    import keras

    keras.utils.set_random_seed(0)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    models = models_fixture(keras)
    (FIXTURES / "keras_models.json").write_text(json.dumps(models, separators=(",", ":")) + "\n")
    numeric = numeric_fixture(keras)
    (FIXTURES / "keras_numeric.json").write_text(json.dumps(numeric, separators=(",", ":")) + "\n")
    print(json.dumps({"sequential": len(models["sequential"]), "graphs": len(models["graphs"]), "refused": len(models["refused"]), "numeric_cases": len(numeric["cases"])}))


if __name__ == "__main__":
    main()
