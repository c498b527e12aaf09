"""Turn a spec (dict, list, or YAML / JSON file) into a PyTorch module, checking everything first.

The spec speaks Keras (layer types, argument names, defaults, channels-last
``input_shape``); the built :class:`SpecModel` takes NCHW tensors. Every
layer's arguments and shapes are checked in order before any module runs; the
first problem raises :class:`SpecError` naming the layer (index, name, type),
the field, the shapes and a fix, with the summary of the layers before it.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
from torch import nn

from cnnlab.nn.init import initialize
from cnnlab.nn.params import count_params
from cnnlab.nn.regularizers import Regularizer, attach
from cnnlab.ops.limits import MAX_SIZE, check_bytes
from cnnlab.spec import fields as F
from cnnlab.spec.errors import SpecError, fmt_shape, suggestion
from cnnlab.spec.layers import COMMON_ARGS, INPUT_TYPES, REQUIRED, TYPES, LayerContext, LayerType, Shape, rank_name
from cnnlab.spec.load import LoadedSpec, load_spec
from cnnlab.spec.summary import LayerRow, Summary

_TOP_KEYS = ("name", "input_shape", "layers", "outputs")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def to_snake_case(name: str) -> str:
    """Keras's default layer name stem: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    return F.snake_case(re.sub(r"\W+", "", name))


@dataclass
class _Node:
    index: int  # position in the user's layers list
    type: str
    name: str
    inputs: list[str]
    args: dict[str, Any]
    trainable: bool


class SpecModel(nn.Module):
    """A model built from a spec: NCHW float tensors in, the last layer's output out.

    ``.spec`` is the normalised spec (JSON-safe; ``build(model.spec)`` rebuilds
    the same architecture), ``.input_shape`` the Keras (H, W, C) input shape.
    Layers are in ``.layers`` (a ModuleDict keyed by Keras layer name), so a
    state dict reads ``layers.conv2d.weight`` etc.
    """

    def __init__(self, spec: dict[str, Any], input_shape: Shape, plan: list[tuple[str, list[str]]], modules: dict[str, nn.Module], rows: list[LayerRow], input_name: str, output: str, graph: bool) -> None:
        super().__init__()
        self.spec = spec
        self.input_shape = tuple(input_shape)
        self.layers = nn.ModuleDict(modules)
        self._plan = plan
        self._rows = rows
        self._input_name = input_name
        self._output = output
        self._graph = graph
        self._sequential = all(inputs == [previous] for (_, inputs), previous in zip(plan, [input_name] + [n for n, _ in plan]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._sequential:
            for name, _ in self._plan:
                x = self.layers[name](x)
            return x
        values: dict[str, torch.Tensor] = {self._input_name: x}
        for name, inputs in self._plan:
            values[name] = self.layers[name](*(values[i] for i in inputs))
        return values[self._output]


def build(spec: dict[str, Any] | list[Any] | str | os.PathLike[str], *, seed: int | None = None) -> SpecModel:
    """Check ``spec`` completely, then build it; raises :class:`SpecError` on the first problem.

    ``spec``: a dict ``{input_shape: [H, W, C], layers: [...]}``, a bare list of
    layers (the first being ``{type: Input, shape: [...]}`` or carrying
    ``input_shape``), or a path to a YAML / JSON file. ``seed`` makes the
    initial weights reproducible.
    """
    if isinstance(spec, (str, os.PathLike)):
        spec = load_spec(spec)
    return _Builder(spec, seed).run()


def with_input_shape(spec: dict[str, Any] | list[Any] | str | os.PathLike[str], input_shape: Shape | list[int]) -> dict[str, Any]:
    """A copy of ``spec`` whose input shape is ``input_shape`` (H, W, C), wherever the spec gave it.

    The shape goes where the spec declares its input (an ``Input`` layer's
    ``shape``, the first layer's ``input_shape``, or the top-level
    ``input_shape``), so the result builds exactly as the spec with that input.
    A loaded file keeps its name and line numbers for error messages.
    """
    loaded = load_spec(spec) if isinstance(spec, (str, os.PathLike)) else spec
    data: Any = {"layers": loaded} if isinstance(loaded, list) else loaded
    if not isinstance(data, dict):
        return data  # the builder says what is wrong with it
    shape = [int(v) for v in input_shape]
    result = copy.deepcopy(dict(data))
    layers = result.get("layers")
    head = layers[0] if isinstance(layers, list) and layers and isinstance(layers[0], dict) else None
    if head is not None and head.get("type") in INPUT_TYPES:
        head["shape"] = shape
        result.pop("input_shape", None)
    elif head is not None and "input_shape" in head:
        head["input_shape"] = shape
    else:
        result["input_shape"] = shape
    if isinstance(loaded, LoadedSpec):
        return LoadedSpec(result, source=loaded.source, lines=loaded.lines)
    return result


class _Builder:
    def __init__(self, spec: Any, seed: int | None) -> None:
        self.source = spec.source if isinstance(spec, LoadedSpec) else None
        self.lines = spec.lines if isinstance(spec, LoadedSpec) else {}
        if isinstance(spec, list):
            spec = {"layers": spec}
        if not isinstance(spec, dict):
            self.fail_top(None, f"a spec is a mapping with 'input_shape' and 'layers' (or a list of layers), got {type(spec).__name__}", "write {input_shape: [28, 28, 1], layers: [...]}")
        self.raw = copy.deepcopy(dict(spec))
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.rows: list[LayerRow] = []
        self.graph = False

    # -- locations and failures --

    def _where(self, index: int | None = None, node: Any = None, field: str | None = None) -> str:
        """'model.yaml:12: layers[3] 'conv2d_1' (Conv2D), field 'kernel_size''."""
        line = None
        if index is not None:
            line = (self.lines.get((index, field)) if field else None) or self.lines.get((index,))
        elif field:
            line = self.lines.get((field,))
        parts = []
        if self.source:
            parts.append(f"{self.source}:{line}" if line else self.source)
        label = []
        if index is not None:
            name = f" '{node.name}' ({node.type})" if node is not None and node.name else (f" ({node.type})" if node is not None else "")
            label.append(f"layers[{index}]{name}")
        if field:
            label.append(f"field '{field}'")
        if label:
            parts.append(", ".join(label))
        return ": ".join(parts) or "spec"

    def fail_top(self, field: str | None, message: str, fix: str) -> NoReturn:
        raise SpecError(message, where=self._where(None, None, field) or "spec", fix=fix, partial=self._partial())

    def fail(self, index: int, node: Any, field: str | None, message: str, fix: str) -> NoReturn:
        raise SpecError(message, where=self._where(index, node, field), fix=fix, partial=self._partial())

    def _partial(self) -> Summary | None:
        if not self.rows:
            return None
        return Summary.from_rows(self.raw.get("name") or ("functional" if self.graph else "sequential"), self.rows, graph=self.graph)

    # -- the steps --

    def run(self) -> SpecModel:
        for key in self.raw:
            if key not in _TOP_KEYS:
                self.fail_top(key, f"unknown top-level key {key!r}", suggestion(key, _TOP_KEYS, "keys"))
        layers = self.raw.get("layers")
        if not isinstance(layers, list) or not layers:
            self.fail_top("layers", "'layers' must be a non-empty list of layers", "write layers: [{type: Conv2D, filters: 32, kernel_size: 3}, ...]")
        for i, layer in enumerate(layers):
            if not isinstance(layer, dict):
                self.fail(i, None, None, f"a layer is a mapping with a 'type', got {layer!r}", "write e.g. {type: Dense, units: 10}")
        self.graph = any("inputs" in layer for layer in layers)
        input_shape, input_name, first = self._input(layers)
        nodes = self._nodes(layers, first, input_name)
        return self._assemble(input_shape, input_name, nodes)

    def _input(self, layers: list[dict[str, Any]]) -> tuple[Shape, str, int]:
        """(input shape, input name, index of the first real layer)."""
        top = self.raw.get("input_shape")
        first = 0
        name = "input_layer"
        shape = top
        field_index: int | None = None
        head = layers[0]
        if head.get("type") in INPUT_TYPES:
            first = 1
            field_index = 0
            extra = set(head) - {"type", "name", "shape", "batch_size", "dtype"}
            if extra:
                bad = sorted(extra)[0]
                self.fail(0, None, bad, f"Input takes 'shape' and 'name', not {bad!r}", suggestion(bad, ("shape", "name"), "arguments"))
            if top is not None and head.get("shape") is not None and list(head["shape"]) != list(top):
                self.fail(0, None, "shape", f"Input shape {head['shape']} disagrees with input_shape {top}", "give the input shape once")
            shape = head.get("shape", top)
            name = head.get("name", name)
        elif "input_shape" in head:
            field_index = 0
            shape = head["input_shape"]
        if any(layer.get("type") in INPUT_TYPES for layer in layers[first:]):
            index = next(i for i, layer in enumerate(layers) if i >= first and layer.get("type") in INPUT_TYPES)
            self.fail(index, None, "type", "only one Input is supported, as the first layer", "build one input per model; join branches with Add / Concatenate")
        if shape is None:
            self.fail_top("input_shape", "the input shape is missing", "add input_shape: [height, width, channels] (channels last, as Keras), e.g. [28, 28, 1]")

        def fail(message: str, fix: str) -> NoReturn:
            if field_index is None:
                self.fail_top("input_shape", message, fix)
            self.fail(field_index, None, "shape" if first else "input_shape", message, fix)

        if not isinstance(shape, (list, tuple)) or not shape or not all(F.is_int(v) for v in shape):
            fail(f"the input shape must be a list of sizes, got {shape!r}", "write e.g. [28, 28, 1] (height, width, channels)")
        if any(v < 1 for v in shape):
            fail(f"the input shape {list(shape)} has a size below 1", "every size must be >= 1 (a size cannot be negative)")
        if any(v > MAX_SIZE for v in shape):
            fail(f"the input shape {list(shape)} has a size over the limit of {MAX_SIZE}", f"use sizes of at most {MAX_SIZE}, e.g. [224, 224, 3]")
        return tuple(int(v) for v in shape), str(name), first

    def _nodes(self, layers: list[dict[str, Any]], first: int, input_name: str) -> list[_Node]:
        nodes: list[_Node] = []
        names = {input_name}
        counters: dict[str, int] = {}
        previous = input_name
        for i in range(first, len(layers)):
            layer = layers[i]
            type_name = layer.get("type")
            if not isinstance(type_name, str):
                self.fail(i, None, "type", f"every layer needs a 'type', got {type_name!r}", "write e.g. type: Conv2D")
            if type_name not in TYPES:
                self.fail(i, _Node(i, type_name, layer.get("name", ""), [], {}, True), "type", f"unknown layer type {type_name!r}", suggestion(type_name, TYPES, "types"))
            layer_type = TYPES[type_name]
            name = layer.get("name")
            if name is None:
                stem = to_snake_case(type_name)
                count = counters.get(stem, 0)
                name = stem if count == 0 else f"{stem}_{count}"
                while name in names:
                    count += 1
                    name = f"{stem}_{count}"
                counters[stem] = count + 1
            node = _Node(i, type_name, str(name), [], {}, True)
            if not isinstance(name, str) or not _NAME_RE.match(name):
                self.fail(i, node, "name", f"layer name {name!r} is not valid", "use letters, digits, '_' or '-', starting with a letter (no dots)")
            if name in names:
                self.fail(i, node, "name", f"the name {name!r} is already used by another layer", "give every layer a different name")
            names.add(name)
            inputs = layer.get("inputs")
            if inputs is None:
                inputs = [previous]
            elif isinstance(inputs, str):
                inputs = [inputs]
            if not isinstance(inputs, list) or not inputs or not all(isinstance(v, str) for v in inputs):
                self.fail(i, node, "inputs", f"'inputs' must be a list of layer names, got {layer.get('inputs')!r}", "write e.g. inputs: [conv2d, input_layer]")
            known = [input_name] + [n.name for n in nodes]
            for ref in inputs:
                if ref not in known:
                    later = ref in [lay.get("name") for lay in layers[i:]]
                    why = "it comes later; a layer can only take earlier layers" if later else "there is no such layer"
                    self.fail(i, node, "inputs", f"input {ref!r} is not an earlier layer ({why})", suggestion(ref, known, "names"))
            if layer_type.merge and len(inputs) < 2:
                self.fail(i, node, "inputs", f"{type_name} joins at least 2 inputs, got {inputs}", "list two or more earlier layer names in inputs")
            if not layer_type.merge and len(inputs) != 1:
                self.fail(i, node, "inputs", f"{type_name} takes one input, got {inputs}", "list one earlier layer name, or join them first with Add / Concatenate")
            node.inputs = list(inputs)
            node.args = self._args(i, node, layer_type, layer, is_first=(i == first))
            node.trainable = node.args.pop("trainable")
            nodes.append(node)
            previous = node.name
        return nodes

    def _args(self, i: int, node: _Node, layer_type: LayerType, layer: dict[str, Any], is_first: bool) -> dict[str, Any]:
        aliases = layer_type.aliases
        valid = set(layer_type.arguments) | set(COMMON_ARGS) | set(aliases) | ({"input_shape"} if is_first else set())
        args: dict[str, Any] = {}
        for key, value in layer.items():
            if key not in valid:
                options = sorted(set(layer_type.arguments) | {"name", "inputs", "trainable"})
                hint = " ('input_shape' belongs to the first layer only, or at the top of the spec)" if key == "input_shape" else ""
                self.fail(i, node, key, f"{layer_type.name} has no argument {key!r}{hint}", suggestion(key, options, f"{layer_type.name} arguments"))
            if key in ("type", "name", "inputs", "input_shape"):
                continue
            if key == "dtype":
                if value not in (None, "float32"):
                    self.fail(i, node, key, f"only float32 layers are supported, got {value!r}", "remove dtype")
                continue
            target = aliases.get(key, key)

            def fail(message: str, fix: str, _key: str = key) -> NoReturn:
                self.fail(i, node, _key, message, fix)

            args[target] = F.boolean(value, fail) if key == "trainable" else layer_type.coerce(target, value, fail)
        for key, argument in layer_type.arguments.items():
            if key not in args:
                if argument.default is REQUIRED:
                    self.fail(i, node, key, f"{layer_type.name} needs {key!r}", f"add {key}: ... to this layer")
                args[key] = layer_type.default(key)
        layer_type.complete(args)
        args.setdefault("trainable", True)
        return args

    def _assemble(self, input_shape: Shape, input_name: str, nodes: list[_Node]) -> SpecModel:
        shapes: dict[str, Shape] = {input_name: input_shape}
        modules: dict[str, nn.Module] = {}
        weights = 0  # parameters (and buffers) of the layers so far
        if self.graph:
            self.rows.append(LayerRow(input_name, "InputLayer", input_shape, 0, 0, True, []))
        for node in nodes:
            layer_type = TYPES[node.type]
            in_shapes = [shapes[ref] for ref in node.inputs]

            def fail(field: str | None, message: str, fix: str, _node: _Node = node) -> NoReturn:
                self.fail(_node.index, _node, field, message, fix)

            for shape in in_shapes:
                if layer_type.ranks is not None and len(shape) not in layer_type.ranks:
                    want = " or ".join(rank_name(r) for r in layer_type.ranks)
                    fix = "add a Reshape before it" if len(shape) != 1 else "move it before the Flatten / global pooling, or add a Reshape back to an image"
                    fail(None, f"{node.type} takes {want}, but its input has shape {fmt_shape(shape)}", fix)
            ctx = LayerContext(node.args, in_shapes, fail)
            out = tuple(int(v) for v in layer_type.output_shape(ctx))
            weights = self._check_sizes(node, layer_type, ctx, out, weights)
            module = layer_type.build(ctx, out)
            self._init_weights(node, layer_type, module)
            if not node.trainable:
                for parameter in module.parameters():
                    parameter.requires_grad_(False)
                if hasattr(module, "trainable"):
                    module.trainable = False
            count = count_params(module)
            self.rows.append(LayerRow(node.name, node.type, out, count.trainable, count.non_trainable, node.trainable, node.inputs if self.graph else None))
            shapes[node.name] = out
            modules[node.name] = module
        spec = self._normalised(input_shape, input_name, nodes)
        plan = [(node.name, node.inputs) for node in nodes]
        output = self.raw.get("outputs")
        output = output[0] if isinstance(output, list) and len(output) == 1 else output
        if output is None:
            output = nodes[-1].name
        if output not in shapes:
            self.fail_top("outputs", f"output {output!r} is not a layer name", suggestion(str(output), list(shapes), "names"))
        spec["outputs"] = [output] if self.graph else None
        if spec["outputs"] is None:
            del spec["outputs"]
        return SpecModel(spec, input_shape, plan, modules, self.rows, input_name, output, self.graph)

    def _check_sizes(self, node: _Node, layer_type: LayerType, ctx: LayerContext, out: Shape, weights: int) -> int:
        """Refuse a layer whose output or weights the machine cannot hold, before allocating them.

        The layer is first built on torch's meta device (shapes, no memory) to
        count its tensors; the model's weights so far plus this layer's, at 4
        bytes each, and one sample's output of the layer must fit in the memory
        available now. Returns the new weight count.
        """
        where = self._where(node.index, node)
        check_bytes(
            math.prod(out) * 4,
            where=where,
            what=f"one sample's output {fmt_shape(out)}",
            fix="use a smaller input_shape, fewer filters / units, or downsample before this layer (pooling, strides)",
        )
        with torch.device("meta"):
            probe = layer_type.build(ctx, out)
        count = sum(t.numel() for t in probe.parameters()) + sum(t.numel() for t in probe.buffers())
        total = weights + count
        check_bytes(
            total * 4,
            where=where,
            what=f"the weights up to this layer ({total:,} numbers, this layer {count:,})",
            fix="use fewer filters / units, or downsample before this layer (pooling, strides) so a Dense layer sees fewer inputs",
        )
        return total

    def _init_weights(self, node: _Node, layer_type: LayerType, module: nn.Module) -> None:
        for tensor_name, (init_arg, reg_arg) in layer_type.weights.items():
            tensor = getattr(module, tensor_name, None)
            if tensor is None:
                continue
            init = node.args[init_arg]
            options = dict(init) if isinstance(init, dict) else {"type": init}
            initialize(tensor, options.pop("type"), generator=self.generator, **options)
            reg = node.args.get(reg_arg) if reg_arg else None
            if reg and (reg["l1"] or reg["l2"]):
                attach(module, tensor_name, Regularizer(reg["l1"], reg["l2"]))

    def _normalised(self, input_shape: Shape, input_name: str, nodes: list[_Node]) -> dict[str, Any]:
        layers: list[dict[str, Any]] = []
        if self.graph:
            layers.append({"type": "Input", "name": input_name, "shape": list(input_shape)})
        for node in nodes:
            entry: dict[str, Any] = {"type": node.type, "name": node.name}
            if self.graph:
                entry["inputs"] = list(node.inputs)
            entry.update(node.args)
            entry["trainable"] = node.trainable
            layers.append(entry)
        spec: dict[str, Any] = {"name": self.raw.get("name") or ("functional" if self.graph else "sequential"), "input_shape": list(input_shape), "layers": layers}
        return spec
