"""Read a Keras model file (architecture and weights) into a cnnlab spec, with h5py only.

Never unpickles and never runs Keras: the architecture is JSON, the weights are
HDF5 datasets. Two formats:

- ``.keras`` (Keras 3): a zip of ``config.json`` and ``model.weights.h5``. In the
  weights file each layer's arrays sit under ``layers/<name>/vars/<i>``, where
  ``<name>`` is Keras's snake-case class name made unique by a counter in the
  order of ``model.layers`` (``conv2d``, ``conv2d_1``...; a functional model's
  input layer counts, a Sequential's does not), not the layer's own name.
- ``.h5`` (legacy, what ``model.save('x.h5')`` writes in Keras 2 and 3): the
  config in the ``model_config`` attribute, the arrays under
  ``model_weights/<layer name>/`` as the group's ``weight_names`` attribute lists them.

Sequential and functional models (one input, one output, no shared layers)
made of layers the spec language has come over; any other layer is refused
naming it and its type. Keras weights land through
:func:`cnnlab.spec.keras_weights.set_keras_weights` (Keras layouts to torch's).
The layers' arguments are those of the spec layer types
(:data:`cnnlab.spec.layers.TYPES`, the one list of them: a type added there is
read from Keras files too), with the spec's own checks; initialisers are left
out (the weights come from the file), regularisers come along, constraints do
not. A config setting with no counterpart (``output_padding``, ``renorm``) is
refused naming the layer, unless it is at its no-op default.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.errors import CnnlabError

# Keras config keys that change nothing a forward pass or fine-tuning computes (or only at their
# defaults, which the check below requires): anything else a layer's config holds that its spec
# layer type (cnnlab.spec.layers.TYPES) has no argument for is refused.
_IGNORED = {"name", "trainable", "dtype", "activity_regularizer", "kernel_constraint", "bias_constraint",
            "beta_constraint", "gamma_constraint", "alpha_constraint", "depthwise_constraint",
            "pointwise_constraint", "build_config", "compile_config", "renorm_momentum", "renorm_clipping",
            "quantization_config"}
_DEFAULTS_ONLY = (None, False, 0, [], {}, [None, None])
_INPUTS = ("InputLayer",)


@dataclass
class ImportedKeras:
    """A Keras model as cnnlab sees it: ``spec`` (build it with :func:`cnnlab.spec.build`), ``tensors``
    (the built SpecModel's state dict) and ``info`` (format, Keras version, model class and name)."""

    spec: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    info: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        """The SpecModel with the Keras weights, in eval mode."""
        from cnnlab.spec.build import build

        model = build(self.spec)
        model.load_state_dict(self.tensors)
        return model.eval()


def _snake(name: str) -> str:
    """Keras's ``naming.to_snake_case``: Conv2DTranspose -> conv2d_transpose, ReLU -> re_lu."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _fail(path: Path, message: str, fix: str, layer: str | None = None) -> CnnlabError:
    return CnnlabError(message, where=f"{path}: layer {layer!r}" if layer else str(path), fix=fix)


# ------------------------------------------------------------------------------ files


class _Weights:
    """Arrays per layer, by the layer's position and name, from either format."""

    def __init__(self, kind: str, handle: Any) -> None:
        self.kind, self.handle = kind, handle

    def arrays(self, store_name: str, layer_name: str) -> list[np.ndarray] | None:
        if self.kind == "keras":
            group = self.handle.get(f"layers/{store_name}/vars")
            if group is None:
                return None
            return [np.asarray(group[str(i)]) for i in range(len(group))]
        root = self.handle["model_weights"] if "model_weights" in self.handle else self.handle
        group = root.get(layer_name)
        if group is None:
            return None
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
        return [np.asarray(group[n]) for n in names]


def _open(path: Path) -> tuple[dict[str, Any], _Weights, dict[str, Any], Any]:
    """(model config, weights, info, something to close)."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - a dependency
        raise CnnlabError("reading Keras files needs h5py", where=str(path), fix="pip install h5py") from None
    suffix = path.suffix.lower()
    if suffix == ".keras" or zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                if "config.json" not in names or "model.weights.h5" not in names:
                    raise _fail(path, "is a zip without config.json and model.weights.h5, not a Keras 3 model",
                                "save the model with model.save('name.keras')")
                config = json.loads(archive.read("config.json"))
                metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
                weights = archive.read("model.weights.h5")
        except (zipfile.BadZipFile, json.JSONDecodeError, OSError, KeyError) as error:
            raise _fail(path, f"cannot read the .keras file ({error})", "give an intact file saved by model.save('name.keras')") from None
        try:
            handle = h5py.File(io.BytesIO(weights), "r")
        except OSError as error:
            raise _fail(path, f"model.weights.h5 in it is not a readable HDF5 file ({error})", "save the model again") from None
        return config, _Weights("keras", handle), {"format": "keras", "keras_version": metadata.get("keras_version")}, handle
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise _fail(path, f"is not a readable HDF5 file ({error})", "give a .keras file or an .h5 saved by model.save('name.h5')") from None
    raw = handle.attrs.get("model_config")
    if raw is None:
        handle.close()
        raise _fail(path, "holds weights only (no model_config): the architecture is missing",
                    "save the whole model with model.save('name.h5') (not save_weights), or a .keras file")
    config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    version = handle.attrs.get("keras_version")
    info = {"format": "h5", "keras_version": version.decode() if isinstance(version, bytes) else version}
    return config, _Weights("h5", handle), info, handle


# ------------------------------------------------------------------------ the graph


def _layer_args(path: Path, class_name: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The spec entry of one Keras layer: its config's arguments that the spec layer type has.

    Initialisers are left out (the weights come from the file); the spec's own checks
    refuse what it cannot compute (another data_format, a batch norm over another axis).
    """
    from cnnlab.spec.layers import INPUT_TYPES, TYPES

    layer_type = TYPES.get(class_name)
    if layer_type is None or class_name in INPUT_TYPES or class_name == "BedOfNailsUpSampling2D":
        kind = "a model nested as a layer" if class_name in ("Sequential", "Functional", "Model") else "a layer type"
        known = ", ".join(sorted(t for t in TYPES if t != "BedOfNailsUpSampling2D"))
        raise _fail(path, f"layer {name!r} is {kind} ({class_name}) the spec language does not have", layer=name,
                    fix=f"rebuild the model without {class_name} (the spec language has: {known})")
    takes = set(layer_type.arguments) | set(layer_type.aliases)
    args: dict[str, Any] = {"type": class_name, "name": name}
    for key, value in config.items():
        if key in takes:
            if not key.endswith("_initializer"):
                args[key] = value
        elif key not in _IGNORED and value not in _DEFAULTS_ONLY:
            raise _fail(path, f"layer {name!r} ({class_name}) sets {key}={value!r}, which the spec language has no "
                        "counterpart for", layer=name, fix=f"rebuild the layer without {key}")
    if config.get("trainable") is False:
        args["trainable"] = False
    return args


def _input_shape(path: Path, config: dict[str, Any], where: str) -> list[int]:
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    if shape is None and config.get("shape") is not None:
        shape = [None, *config["shape"]]
    if not shape or any(d is None for d in shape[1:]):
        raise _fail(path, f"the input shape of {where} is not fixed ({shape})", layer=where,
                    fix="build the Keras model with a fixed Input(shape=(height, width, channels))")
    return [int(d) for d in shape[1:]]


def _history(value: Any) -> list[tuple[str, int]]:
    """The (layer, node index) a Keras 3 / Keras 2 inbound-node argument refers to."""
    out: list[tuple[str, int]] = []
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            name, node, _ = value["config"]["keras_history"]
            out.append((name, int(node)))
        return out
    if isinstance(value, list):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):  # Keras 2: [name, node, tensor, {}]
            return [(value[0], int(value[1]))]
        for item in value:
            out += _history(item)
    return out


def _sequential(path: Path, config: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    layers = config["config"]["layers"] if isinstance(config.get("config"), dict) else config["config"]
    shape = None
    spec_layers: list[dict[str, Any]] = []
    stored: list[tuple[str, str, str]] = []  # (spec name, store name, class) per layer with a place in the weights file
    counters: dict[str, int] = {}
    for entry in layers:
        class_name, cfg = entry["class_name"], entry.get("config", {})
        name = cfg.get("name") or _snake(class_name)
        if class_name in _INPUTS:
            shape = _input_shape(path, cfg, name)
            continue
        if shape is None and (cfg.get("batch_input_shape") or cfg.get("batch_shape")):
            shape = _input_shape(path, cfg, name)
        spec_layers.append(_layer_args(path, class_name, name, cfg))
        stem = _snake(class_name)
        count = counters.get(stem, 0)
        counters[stem] = count + 1
        stored.append((name, stem if count == 0 else f"{stem}_{count}", class_name))
    if shape is None:
        build_shape = config.get("config", {}).get("build_input_shape") if isinstance(config.get("config"), dict) else None
        if build_shape:
            shape = [int(d) for d in build_shape[1:]]
    if shape is None:
        raise _fail(path, "the Sequential model has no input shape", "build it with keras.Input(shape=...) first")
    name = config.get("config", {}).get("name", "sequential") if isinstance(config.get("config"), dict) else "sequential"
    return {"name": name, "input_shape": shape, "layers": spec_layers}, stored


def _functional(path: Path, config: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    body = config["config"]
    inputs = _history(body.get("input_layers"))
    outputs = _history(body.get("output_layers"))
    if len(inputs) != 1 or len(outputs) != 1:
        raise _fail(path, f"the model has {len(inputs)} inputs and {len(outputs)} outputs",
                    "bring over a model with one image input and one output")
    spec_layers: list[dict[str, Any]] = []
    stored: list[tuple[str, str, str]] = []
    counters: dict[str, int] = {}
    for entry in body["layers"]:
        class_name, cfg = entry["class_name"], entry.get("config", {})
        name = entry.get("name") or cfg.get("name")
        stem = _snake(class_name)
        count = counters.get(stem, 0)
        counters[stem] = count + 1
        store = stem if count == 0 else f"{stem}_{count}"
        if class_name in _INPUTS:
            if name != inputs[0][0]:
                raise _fail(path, f"input {name!r} is not the model's input", layer=name, fix="use one input")
            spec_layers.append({"type": "Input", "name": name, "shape": _input_shape(path, cfg, name)})
            continue
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) != 1:
            raise _fail(path, f"layer {name!r} ({class_name}) is called {len(nodes)} times (a shared layer)", layer=name,
                        fix="give every call its own layer")
        node = nodes[0]
        refs = _history(node.get("args", node) if isinstance(node, dict) else node)
        if any(index != 0 for _, index in refs):
            raise _fail(path, f"layer {name!r} reads a shared layer's second output", layer=name, fix="do not share layers")
        args = _layer_args(path, class_name, name, cfg)
        args["inputs"] = [ref for ref, _ in refs]
        spec_layers.append(args)
        stored.append((name, store, class_name))
    spec = {"name": body.get("name", "functional"), "layers": spec_layers, "outputs": [outputs[0][0]]}
    return spec, stored


def read_keras_model(path: str | os.PathLike[str]) -> ImportedKeras:
    """The spec and weights of a Keras ``.keras`` / ``.h5`` model file (see the module doc)."""
    from cnnlab.spec.build import build
    from cnnlab.spec.errors import SpecError
    from cnnlab.spec.keras_weights import set_keras_weights

    file = Path(path)
    if not file.is_file():
        raise CnnlabError("no such Keras model file", where=str(file), fix="give the path of a .keras or .h5 file")
    config, weights, info, handle = _open(file)
    try:
        class_name = config.get("class_name")
        if class_name == "Sequential":
            spec, stored = _sequential(file, config)
        elif class_name in ("Functional", "Model"):
            spec, stored = _functional(file, config)
        else:
            raise _fail(file, f"the model is a {class_name}, not a Sequential or functional model",
                        "rebuild it with keras.Sequential or the functional API (subclassed models have no config)")
        try:
            model = build(spec)
        except SpecError as error:
            raise CnnlabError(f"the Keras model does not translate: {error}", where=str(file)) from None
        for name, store, kind in stored:
            arrays = weights.arrays(store, name)
            expected = sum(1 for _ in model.layers[name].parameters()) + sum(
                1 for n, _ in model.layers[name].named_buffers() if n in ("running_mean", "running_var"))
            if arrays is None:
                if expected:
                    raise _fail(file, f"no weights for layer {name!r} ({kind}) in the file", layer=name,
                                fix="save the whole model again (the file is incomplete)")
                continue
            if not arrays and not expected:
                continue
            try:
                set_keras_weights(model, name, arrays)
            except SpecError as error:
                raise CnnlabError(f"the weights of layer {name!r} ({kind}) do not fit: {error}",
                                  where=f"{file}: layer {name!r}") from None
    finally:
        handle.close()
    info.update(model_class=class_name, name=spec.get("name"))
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return ImportedKeras(model.spec, tensors, info)


def import_keras(path: str | os.PathLike[str]) -> Any:
    """The Keras model at ``path`` as a :class:`~cnnlab.spec.build.SpecModel` with its weights, in eval mode."""
    return read_keras_model(path).build()
