"""Generate the Keras model-file fixtures that tests/spec/test_keras_import.py reads (Keras is never imported by tests).

Usage (from the repository root):

    python3 tools/keras_models.py      # creates .venv-keras if needed (tools/keras_parity.py), then writes the fixtures

It writes, under tests/spec/fixtures/keras_models/:

- ``<name>.keras`` (Keras 3's zip of config.json + model.weights.h5) and ``<name>.h5``
  (the legacy HDF5 file ``model.save('x.h5')`` writes) for every model;
- ``predictions.json``: per model its input shape, a fixed input batch (rounded to
  3 decimals, so the test feeds the very same numbers) and Keras's predictions on it
  (``model(x, training=False)``), plus the parameter counts Keras reports;
- ``refused_*.keras`` / ``.h5``: models with a layer the spec language lacks.

The models: the lecture notes' nets (the MNIST net of 93,962 parameters, the
Fashion-MNIST practice net, the cats-vs-dogs net at 16x16 input to stay small,
LeNet as the notes write it in Keras) and random Sequential and functional CNNs
with batch norm, 'same' padding with strides, Conv2DTranspose, upsampling,
residual and concatenating blocks. Every weight is randomised (biases and batch
norm statistics too), so a weight put in the wrong place shows in the outputs.
Deterministic for a given Keras version (seeded).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from keras_parity import ensure_keras, keras_layer, seed_nets  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "spec" / "fixtures" / "keras_models"
N_SEQUENTIAL = 18
N_FUNCTIONAL = 12


def _lenet() -> dict[str, Any]:
    """LeNet as the notes write it in Keras (28x28 there; 16x16 here keeps the file small)."""
    return {"input_shape": [16, 16, 1], "layers": [
        {"type": "Conv2D", "filters": 6, "kernel_size": 5, "padding": "same", "activation": "sigmoid"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"type": "Conv2D", "filters": 16, "kernel_size": 5, "activation": "sigmoid"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "units": 120, "activation": "sigmoid"},
        {"type": "Dense", "units": 84, "activation": "sigmoid"},
        {"type": "Dense", "units": 10, "activation": "softmax"}]}


def seed_specs() -> dict[str, dict[str, Any]]:
    nets = {net["file"].split(".")[0]: net["spec"] for net in seed_nets()}
    cats = json.loads(json.dumps(nets["cats_vs_dogs"]))
    cats["input_shape"] = [12, 12, 3]  # the notes use 64x64 (800k parameters); 12x12 keeps the file small
    fashion = json.loads(json.dumps(nets["fashion_mnist_practice"]))
    for layer in fashion["layers"]:  # half the widths (32, 64 -> 16, 32): a quarter of the weights
        if layer["type"] == "Conv2D":
            layer["filters"] //= 2
    return {"mnist_3conv": nets["mnist_3conv"], "fashion_practice_half": fashion,
            "cats_vs_dogs_12": cats, "lenet_keras_16": _lenet()}


# ---- random CNNs --------------------------------------------------------------------------

ACTS = ["relu", "sigmoid", "tanh", "elu", "selu", "softplus", "gelu", "swish", "relu6", "leaky_relu", "linear", None]


def conv_layer(rng: random.Random, size: int) -> dict[str, Any]:
    kind = rng.choice(["Conv2D", "Conv2D", "Conv2D", "Conv2DTranspose"])
    layer: dict[str, Any] = {"type": kind, "filters": rng.choice([2, 3, 4, 6, 8]), "kernel_size": rng.choice([1, 2, 3, [3, 2]])}
    layer["padding"] = rng.choice(["same", "same", "valid"])
    if rng.random() < 0.5:
        layer["strides"] = rng.choice([2, [2, 1]] if kind == "Conv2D" else [2, 2, 3])
    elif kind == "Conv2D" and rng.random() < 0.3:
        layer["dilation_rate"] = 2
    if rng.random() < 0.7:
        layer["activation"] = rng.choice(ACTS)
    if rng.random() < 0.2:
        layer["use_bias"] = False
    return layer


def random_sequential_spec(rng: random.Random, keras: Any) -> dict[str, Any]:
    """Image layers in random order (each kind guaranteed over the set), then a classifier."""
    size = rng.choice([8, 10, 12, 16])
    spec = {"input_shape": [size, size, rng.choice([1, 3])], "layers": []}
    tensor = keras.Input(tuple(spec["input_shape"]))
    target = rng.randint(3, 6)
    tries = 0
    while len(spec["layers"]) < target and tries < 60:
        tries += 1
        r = rng.random()
        if r < 0.4:
            layer = conv_layer(rng, size)
        elif r < 0.55:
            layer = {"type": "BatchNormalization"}
            if rng.random() < 0.2:
                layer[rng.choice(["center", "scale"])] = False
        elif r < 0.65:
            layer = {"type": "UpSampling2D", "size": rng.choice([2, [2, 1]]), "interpolation": rng.choice(["nearest", "bilinear"])}
        elif r < 0.78:
            layer = {"type": rng.choice(["MaxPooling2D", "AveragePooling2D"]), "pool_size": rng.choice([2, 3]),
                     "padding": rng.choice(["valid", "same"])}
            if rng.random() < 0.3:
                layer["strides"] = 1
        elif r < 0.84:
            layer = rng.choice([{"type": "ZeroPadding2D", "padding": rng.choice([1, [1, 2]])}, {"type": "Cropping2D", "cropping": 1}])
        elif r < 0.92:
            layer = rng.choice([{"type": "Activation", "activation": rng.choice(ACTS[:-1])}, {"type": "ReLU", "max_value": 6.0},
                                {"type": "LeakyReLU", "negative_slope": 0.2}, {"type": "ELU"}, {"type": "PReLU", "shared_axes": [1, 2]}])
        else:
            layer = rng.choice([{"type": "Dropout", "rate": 0.3}, {"type": "SpatialDropout2D", "rate": 0.2}])
        try:
            out = keras_layer(keras, layer)(tensor)
        except Exception:
            continue
        shape = tuple(out.shape[1:])
        if not all(isinstance(d, int) and 1 <= d <= 40 for d in shape[:2]):
            continue
        spec["layers"].append(layer)
        tensor = out
    spec["layers"].append(rng.choice([{"type": "Flatten"}, {"type": "GlobalAveragePooling2D"}, {"type": "GlobalMaxPooling2D"}]))
    if rng.random() < 0.4:
        spec["layers"].append({"type": "Dense", "units": rng.choice([8, 16]), "activation": "relu"})
        if rng.random() < 0.5:
            spec["layers"].append({"type": "BatchNormalization"})
    units = rng.choice([1, 3, 5])
    spec["layers"].append({"type": "Dense", "units": units, "activation": "sigmoid" if units == 1 else "softmax"})
    return spec


def random_functional_spec(rng: random.Random, index: int) -> dict[str, Any]:
    """Residual, inception and encoder-decoder (Conv2DTranspose / upsampling + skip) blocks."""
    size, channels = rng.choice([8, 12, 16]), rng.choice([1, 3])
    layers: list[dict[str, Any]] = [{"type": "Input", "name": "image", "shape": [size, size, channels]}]
    counter = 0

    def add(layer: dict[str, Any], *inputs: str) -> str:
        nonlocal counter
        counter += 1
        layer["name"] = f"{layer['type'].lower()}_{counter}"
        layer["inputs"] = list(inputs)
        layers.append(layer)
        return layer["name"]

    last, width = "image", channels
    for block in range(rng.randint(1, 2)):
        kind = ["residual", "inception", "unet"][(index + block) % 3]
        if kind == "residual":
            f = rng.choice([width, 6])
            a = add({"type": "Conv2D", "filters": f, "kernel_size": 3, "padding": "same", "use_bias": False}, last)
            a = add({"type": "BatchNormalization"}, a)
            a = add({"type": "Activation", "activation": "relu"}, a)
            b = add({"type": "Conv2D", "filters": f, "kernel_size": 3, "padding": "same"}, a)
            skip = last if f == width else add({"type": "Conv2D", "filters": f, "kernel_size": 1}, last)
            last = add({"type": rng.choice(["Add", "Add", "Average", "Maximum", "Multiply", "Subtract", "Minimum"])}, b, skip)
            last = add({"type": "ReLU"}, last)
            width = f
        elif kind == "inception":
            f1, f3, fp = (rng.choice([2, 3, 4]) for _ in range(3))
            b1 = add({"type": "Conv2D", "filters": f1, "kernel_size": 1, "activation": "relu"}, last)
            b3 = add({"type": "Conv2D", "filters": f3, "kernel_size": 3, "padding": "same", "activation": "relu"},
                     add({"type": "Conv2D", "filters": 3, "kernel_size": 1}, last))
            bp = add({"type": "Conv2D", "filters": fp, "kernel_size": 1},
                     add({"type": "MaxPooling2D", "pool_size": 3, "strides": 1, "padding": "same"}, last))
            last = add({"type": "Concatenate"}, b1, b3, bp)
            width = f1 + f3 + fp
        else:  # down by a strided 'same' conv, up by Conv2DTranspose or UpSampling2D, concatenated with the skip
            f = rng.choice([4, 6])
            down = add({"type": "Conv2D", "filters": f, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}, last)
            down = add({"type": "BatchNormalization"}, down)
            if rng.random() < 0.5:
                up = add({"type": "Conv2DTranspose", "filters": f, "kernel_size": rng.choice([2, 3]), "strides": 2, "padding": "same"}, down)
            else:
                up = add({"type": "Conv2D", "filters": f, "kernel_size": 1},
                         add({"type": "UpSampling2D", "size": 2, "interpolation": rng.choice(["nearest", "bilinear"])}, down))
            last = add({"type": "Concatenate"}, up, last)
            width = f + width
    last = add({"type": rng.choice(["GlobalAveragePooling2D", "GlobalMaxPooling2D"])}, last)
    units = rng.choice([1, 4])
    add({"type": "Dense", "units": units, "activation": "sigmoid" if units == 1 else "softmax"}, last)
    return {"name": f"functional_{index}", "layers": layers}


# ---- building, randomising, saving ---------------------------------------------------------

def build_keras(keras: Any, spec: dict[str, Any], name: str) -> Any:
    keras.backend.clear_session()
    if spec["layers"][0]["type"] != "Input":
        return keras.Sequential([keras.Input(tuple(spec["input_shape"]))] + [keras_layer(keras, c) for c in spec["layers"]], name=name)
    tensors: dict[str, Any] = {}
    for layer in spec["layers"]:
        if layer["type"] == "Input":
            tensors[layer["name"]] = keras.Input(tuple(layer["shape"]), name=layer["name"])
            continue
        ins = [tensors[i] for i in layer["inputs"]]
        tensors[layer["name"]] = keras_layer(keras, layer)(ins if len(ins) > 1 else ins[0])
    return keras.Model(tensors[spec["layers"][0]["name"]], tensors[spec["layers"][-1]["name"]], name=name)


def randomise(model: Any, rng: Any) -> None:
    """Random biases, batch-norm gammas / betas / moving statistics (Keras starts them at 0 / 1)."""
    import numpy as np

    for layer in model.layers:
        values = layer.get_weights()
        if not values:
            continue
        kind = type(layer).__name__
        new = []
        for i, v in enumerate(values):
            if kind == "BatchNormalization":
                v = rng.uniform(0.5, 1.5, v.shape) if layer.weights[i].name in ("gamma", "moving_variance") else rng.uniform(-0.5, 0.5, v.shape)
            elif v.ndim == 1:
                v = rng.uniform(-0.3, 0.3, v.shape)
            elif kind == "PReLU":
                v = rng.uniform(0.0, 0.5, v.shape)
            new.append(np.asarray(v, dtype="float32"))
        layer.set_weights(new)


def save_both(model: Any, stem: str) -> None:
    import warnings
    import zipfile

    model.save(OUT / f"{stem}.keras")
    # Keras stores the zip uncompressed; the same members deflated are a third of the size
    # (a .keras file is any zip holding them: Keras and cnnlab read it alike).
    path = OUT / f"{stem}.keras"
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info.filename)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info, data in members:
            archive.writestr(info.filename, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "HDF5 is legacy": that is the point
        model.save(OUT / f"{stem}.h5")


def record(keras: Any, model: Any, stem: str, rng: Any) -> dict[str, Any]:
    import numpy as np

    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    x = np.round(rng.uniform(0, 1, (2, *shape)), 3).astype("float32")
    y = np.asarray(model(x, training=False), dtype="float64")
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"name": stem, "input_shape": list(shape), "input": [round(float(v), 3) for v in x.reshape(-1)],
            "output_shape": list(y.shape), "output": [float(f"{v:.8g}") for v in y.reshape(-1)],
            "total_params": trainable + frozen, "trainable_params": trainable, "non_trainable_params": frozen,
            "layers": [[layer.name, type(layer).__name__] for layer in model.layers]}


def refused_models(keras: Any) -> None:
    """A model with a DepthwiseConv2D (not in the spec language) and one with an LSTM."""
    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.DepthwiseConv2D(3, name="depthwise"), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")], name="refused_depthwise")
    save_both(model, "refused_depthwise")


def main() -> None:
    ensure_keras()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    rng = random.Random(14)
    values = np.random.default_rng(14)
    entries = []
    specs: list[tuple[str, dict[str, Any]]] = list(seed_specs().items())
    specs += [(f"sequential_{i}", random_sequential_spec(rng, keras)) for i in range(N_SEQUENTIAL)]
    specs += [(f"functional_{i}", random_functional_spec(rng, i)) for i in range(N_FUNCTIONAL)]
    for stem, spec in specs:
        model = build_keras(keras, spec, stem)
        randomise(model, values)
        save_both(model, stem)
        entry = record(keras, model, stem, values)
        entries.append(entry)
        x = np.asarray(entry["input"], dtype="float32").reshape(2, *entry["input_shape"])
        for suffix in ("keras", "h5"):  # Keras reads its own files back (the deflated zip too) to the same outputs
            again = keras.saving.load_model(OUT / f"{stem}.{suffix}", compile=False)
            got = np.asarray(again(x, training=False), dtype="float64").reshape(-1)
            assert np.allclose(got, entry["output"], atol=1e-6), (stem, suffix)
    refused_models(keras)
    import tensorflow as tf

    doc = {"generator": "tools/keras_models.py", "keras_version": keras.__version__, "tensorflow_version": tf.__version__,
           "models": entries}
    (OUT / "predictions.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(json.dumps({"models": len(entries), "bytes": total}))


if __name__ == "__main__":
    main()
