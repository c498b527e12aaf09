"""Keras-style model summaries: per-layer output shapes and parameter counts, and the totals.

Works on a :class:`~cnnlab.spec.build.SpecModel` (rows come from the spec, with
Keras's layer names and types), on a spec (dict, list or file), and on any
plain ``nn.Module`` (forward hooks on a dummy batch record each layer's output
shape). Output shapes are channels-last without the batch, as Keras prints
them; counts come from :func:`cnnlab.nn.params.count_params` (batch-norm moving
statistics are non-trainable weights, as in Keras). ``str(summary)`` is the
table Keras 3 prints (rich, box drawing, "Total params: 93,962 (367.04 KB)").
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.nn.params import KERAS_WEIGHT_BUFFERS, count_params
from cnnlab.spec.errors import fmt_shape
from cnnlab.spec.fields import snake_case

_BYTES_PER_PARAM = 4  # float32, as Keras's memory figures assume


@dataclass
class LayerRow:
    name: str
    type: str
    output_shape: Any  # tuple of ints (channels-last, no batch), a list of them, or None
    trainable_params: int
    non_trainable_params: int
    trainable: bool
    inputs: list[str] | None = None  # graph specs: the layers this one reads
    receptive_field: tuple[int, int] | None = None  # (rows, cols) of input pixels one output unit sees
    jump: tuple[float, float] | None = None  # effective stride: input pixels between neighbouring outputs

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    def to_dict(self) -> dict[str, Any]:
        shape = self.output_shape
        shape = [list(s) for s in shape] if isinstance(shape, list) else (list(shape) if shape is not None else None)
        out = {"name": self.name, "type": self.type, "output_shape": shape, "params": self.params, "trainable": self.trainable}
        if self.receptive_field is not None:
            out["receptive_field"] = list(self.receptive_field)
            out["effective_stride"] = [_number(j) for j in self.jump or (1, 1)]
        return out


@dataclass
class Summary:
    """Rows and totals of a model, in Keras's terms."""

    name: str
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    graph: bool = False
    notes: list[str] = field(default_factory=list)
    receptive_field: bool = False  # rows carry receptive_field / jump: render two more columns
    show_trainable: bool = False  # Keras's summary(show_trainable=True): a Y / N column per layer

    @classmethod
    def from_rows(cls, name: str, rows: list[LayerRow], graph: bool = False) -> Summary:
        trainable = sum(r.trainable_params for r in rows)
        frozen = sum(r.non_trainable_params for r in rows)
        return cls(name, list(rows), trainable + frozen, trainable, frozen, graph)

    def to_dict(self) -> dict[str, Any]:
        """``{layers: [{name, type, output_shape, params, trainable}], total_params, trainable_params, non_trainable_params}``."""
        return {
            "name": self.name,
            "layers": [row.to_dict() for row in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
        }

    # -- rendering, as keras.src.utils.summary_utils.print_summary --

    def render(self, line_length: int | None = None, color: bool = False) -> str:
        """The Keras 3 table as text; ``line_length`` defaults to Keras's 88 (108 for graphs)."""
        from rich.console import Console

        buffer = io.StringIO()
        line_length = line_length or (108 if self.graph else 88) + (12 if self.show_trainable else 0)
        console = Console(file=buffer, width=line_length + 40, highlight=False, force_terminal=color, color_system="standard" if color else None, soft_wrap=False)
        self._print(console, line_length)
        return buffer.getvalue()

    def print(self, file: Any = None) -> None:
        """Print the table with colours on a terminal, at most the terminal's width - 4 wide (as Keras)."""
        from rich.console import Console

        console = Console(file=file, highlight=False)
        default = (108 if self.graph else 88) + (12 if self.show_trainable else 0)
        self._print(console, min(default, shutil.get_terminal_size().columns - 4))

    def __str__(self) -> str:
        return self.render()

    def _print(self, console: Any, line_length: int) -> None:
        from rich.markup import escape
        from rich.table import Column, Table

        if self.graph:
            positions = [0.3, 0.56, 0.74, 1.0]
            header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
            alignment = ["left", "left", "right", "left"]
        else:
            positions = [0.45, 0.80, 1.0]
            header = ["Layer (type)", "Output Shape", "Param #"]
            alignment = ["left", "left", "right"]
        if self.receptive_field:  # two narrow columns at the right, the others squeezed
            positions = [p * 0.78 for p in positions] + [0.88, 1.0]
            header += ["RF", "Stride"]
            alignment += ["right", "right"]
        if self.show_trainable:  # as Keras: the other columns shrink to 88 % and "Trainable" takes the rest
            positions = [p * 0.88 for p in positions] + [1.0]
            header.append("Trainable")
            alignment.append("center")
        widths, current = [], 0
        for pos in positions:
            width = int(pos * line_length) - current
            widths.append(width)
            current += width
        columns = [Column(h, justify=a, width=w) for h, a, w in zip(header, alignment, widths)]  # type: ignore[arg-type]
        table = Table(*columns, width=line_length, show_lines=True)
        for row in self.layers:
            cells = [
                f"{escape(row.name)} ([color(33)]{escape(row.type)}[/])",
                _shape_markup(row.output_shape),
                f"[color(34)]{row.params:,}[/]",
            ]
            if self.graph:
                links = ", ".join(f"{ref}[[color(34)]0[/]][[color(34)]0[/]]" for ref in row.inputs or [])
                cells.append(links or "-")
            if self.receptive_field:
                cells.append(_pair_text(row.receptive_field) if row.receptive_field else "?")
                cells.append(_pair_text(row.jump) if row.jump else "?")
            if self.show_trainable:
                cells.append(("[bold color(34)]Y[/]" if row.trainable else "[bold color(9)]N[/]") if row.params else "[bold]-[/]")
            table.add_row(*cells)
        console.print(f'[bold]Model: "{escape(self.name)}"[/]')
        console.print(table)
        for label, count in (("Total", self.total_params), ("Trainable", self.trainable_params), ("Non-trainable", self.non_trainable_params)):
            console.print(f"[bold] {label} params: [/][color(34)]{count:,}[/] ({readable_memory_size(count * _BYTES_PER_PARAM)})")
        for note in self.notes:
            console.print(escape(note))


def _shape_markup(shape: Any) -> str:
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_markup(s) for s in shape) + "]"
    if shape is None:
        return "?"
    return "(" + ", ".join(["[color(45)]None[/]", *(f"[color(34)]{int(d)}[/]" for d in shape)]) + ")"


def readable_memory_size(size: float) -> str:
    """Keras's byte formatting: 375848 -> '367.04 KB'."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _pair_text(pair: Any) -> str:
    a, b = (_number(v) for v in pair)
    return f"{a}" if a == b else f"{a}x{b}"


def summary(model_or_spec: Any, input_shape: tuple[int, ...] | list[int] | None = None, *,
            receptive_field: bool = False) -> Summary:
    """Summarise a SpecModel, a spec (dict / list / YAML or JSON path) or any ``nn.Module``.

    Plain modules need ``input_shape`` (H, W, C) (or an ``input_shape``
    attribute, as zoo models have): one dummy batch runs through the model in
    eval mode, and every leaf module (or cnnlab.nn layer) that produced an
    output becomes a row, in call order. For a spec, ``input_shape`` replaces
    the spec's own input shape (:func:`cnnlab.spec.build.with_input_shape`).

    ``receptive_field=True`` adds each row's receptive field r (input pixels one
    output unit sees) and effective stride j (input pixels between neighbouring
    outputs), by the recurrence over the layers in order, per axis::

        r_out = r_in + (k - 1) * d * j_in        j_out = j_in * s

    (kernel k, stride s, dilation d; upsampling by f: j_out = j_in / f; a global
    pooling sees the whole input). Graph models take the largest r of a layer's inputs.
    """
    from cnnlab.spec.build import SpecModel, build, with_input_shape

    if isinstance(model_or_spec, SpecModel) and input_shape is not None and tuple(input_shape) != model_or_spec.input_shape:
        model_or_spec = model_or_spec.spec  # the same architecture on the input asked for
    if isinstance(model_or_spec, (dict, list, str, os.PathLike)):
        model_or_spec = build(with_input_shape(model_or_spec, input_shape) if input_shape is not None else model_or_spec)
    if isinstance(model_or_spec, SpecModel):
        result = _spec_summary(model_or_spec)
        if receptive_field:
            _add_receptive_fields(result, {n: m for n, m in model_or_spec.layers.items()}, model_or_spec.spec.get("input_shape"))
        return result
    if isinstance(model_or_spec, nn.Module):
        shape = input_shape if input_shape is not None else getattr(model_or_spec, "input_shape", None)
        if not shape:
            raise CnnlabError(
                f"cannot summarise a {type(model_or_spec).__name__} without an input shape",
                where="summary: input_shape",
                fix="pass input_shape=(height, width, channels), e.g. (224, 224, 3)",
            )
        shape = tuple(int(v) for v in shape)
        result = _module_summary(model_or_spec, shape)
        if receptive_field:
            _add_receptive_fields(result, dict(model_or_spec.named_modules()), shape)
        return result
    raise CnnlabError(
        f"cannot summarise a {type(model_or_spec).__name__}",
        where="summary",
        fix="pass a model built by cnnlab.spec.build, a spec (dict, list or file path) or a torch.nn.Module",
    )


def _spec_summary(model: Any) -> Summary:
    rows = []
    for row in model._rows:
        if row.name not in model.layers:
            rows.append(row)
            continue
        module = model.layers[row.name]
        count = count_params(module)
        params = list(module.parameters())
        trainable = row.trainable and (not params or any(p.requires_grad for p in params))
        rows.append(LayerRow(row.name, row.type, row.output_shape, count.trainable, count.non_trainable, trainable, row.inputs))
    total = count_params(model)
    return Summary(model.spec.get("name", "sequential"), rows, total.total, total.trainable, total.non_trainable, graph=model._graph)


def _rows_of(model: nn.Module) -> list[tuple[str, nn.Module, bool]]:
    """(qualified name, module, recurse) for each module that gets a row.

    cnnlab.nn layers (``_cnnlab_atomic``) and leaves are one row each, counting
    everything below them; a container holding parameters of its own gets a
    row for those alone.
    """
    out: list[tuple[str, nn.Module, bool]] = []

    def visit(prefix: str, module: nn.Module) -> None:
        children = list(module.named_children())
        if getattr(module, "_cnnlab_atomic", False) or not children:
            out.append((prefix or type(module).__name__, module, True))
            return
        own = any(True for _ in module.parameters(recurse=False)) or any(n in KERAS_WEIGHT_BUFFERS for n, _ in module.named_buffers(recurse=False))
        if own:
            out.append((prefix or type(module).__name__, module, False))
        for name, child in children:
            visit(f"{prefix}.{name}" if prefix else name, child)

    visit("", model)
    return out


def _channels_last(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        shape = tuple(value.shape[1:])
        return (*shape[1:], shape[0]) if len(shape) > 1 else shape
    if isinstance(value, (list, tuple)):
        shapes = [_channels_last(v) for v in value if isinstance(v, (torch.Tensor, list, tuple))]
        return shapes[0] if len(shapes) == 1 else shapes
    return None


def _module_summary(model: nn.Module, input_shape: tuple[int, ...]) -> Summary:
    entries = _rows_of(model)
    order: dict[int, int] = {}
    shapes: dict[int, Any] = {}
    handles = []
    for position, (_, module, _) in enumerate(entries):

        def hook(mod: nn.Module, args: Any, output: Any, _position: int = position) -> None:
            if _position not in shapes:
                order[_position] = len(order)
                shapes[_position] = _channels_last(output)

        handles.append(module.register_forward_hook(hook))
    modes = {m: m.training for m in model.modules()}
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    dims = (input_shape[-1], *input_shape[:-1]) if len(input_shape) > 1 else input_shape
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *dims), device=device, dtype=dtype))
    except CnnlabError:
        raise
    except Exception as error:  # the model's own shape error, not ours: say where it came from
        raise CnnlabError(
            f"{type(model).__name__} failed on an input of shape {fmt_shape(input_shape)}: {error}",
            where="summary: input_shape",
            fix="pass the input shape the model expects, as (height, width, channels)",
        ) from None
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes.items():
            module.training = mode
    rows = []
    ranked = sorted(range(len(entries)), key=lambda p: order.get(p, len(entries) + p))
    for position in ranked:
        name, module, recurse = entries[position]
        count = count_params(module, recurse=recurse)
        params = list(module.parameters(recurse=recurse))
        if position not in shapes and count.total == 0:
            continue  # an unused parameter-free module says nothing
        trainable = not params or any(p.requires_grad for p in params)
        rows.append(LayerRow(name, type(module).__name__, shapes.get(position), count.trainable, count.non_trainable, trainable))
    total = count_params(model)
    return Summary(snake_case(type(model).__name__), rows, total.total, total.trainable, total.non_trainable)


# ---------------------------------------------------------------- receptive field

Geometry = tuple[tuple[int, int], tuple[float, float], tuple[int, int]]  # kernel, stride, dilation per axis


def _two(value: Any) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)):
        return (value[0], value[-1]) if len(value) > 1 else (value[0], value[0])
    return (value, value)


def _geometry(module: nn.Module) -> list[Geometry] | str:
    """The (kernel, stride, dilation) steps a module applies, 'global' for a global pooling."""
    from cnnlab.nn import lenet as lenet_layers

    name = type(module).__name__
    if "Global" in name or isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return "global"
    if isinstance(module, lenet_layers.Subsampling):
        return [((module.size, module.size), (module.size, module.size), (1, 1))]
    if isinstance(module, lenet_layers.PartialConv2d):
        k = module.kernel_size
        return [((k, k), (1, 1), (1, 1))]
    if isinstance(module, (nn.Conv2d, nn.Conv1d)) and not isinstance(module, nn.ConvTranspose2d):
        return [(_two(module.kernel_size), _two(module.stride), _two(module.dilation))]
    if isinstance(module, nn.ConvTranspose2d):
        s = _two(module.stride)
        return [(_two(module.kernel_size), (1 / s[0], 1 / s[1]), _two(module.dilation))]
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.MaxPool1d, nn.AvgPool1d)):
        kernel = _two(getattr(module, "pool", None) or module.kernel_size)
        stride = _two(getattr(module, "step", None) or module.stride or kernel)
        dilation = _two(getattr(module, "dilation", 1) if isinstance(module, nn.MaxPool2d) else 1)
        return [(kernel, stride, dilation)]
    if isinstance(module, nn.Upsample) or hasattr(module, "size_factors") or name == "BedOfNailsUpsample":
        factors = _two(getattr(module, "size_factors", None) or getattr(module, "size", None) or module.scale_factor)
        return [((1, 1), (1 / factors[0], 1 / factors[1]), (1, 1))]
    children = list(module.children())
    if children:  # a block: its layers in order (the longest path of a residual block)
        steps: list[Geometry] = []
        for child in children:
            geo = _geometry(child)
            if geo == "global":
                return "global"
            steps.extend(geo)  # type: ignore[arg-type]
        return steps
    return []


def _add_receptive_fields(result: Summary, modules: dict[str, nn.Module], input_shape: Any) -> None:
    """Fill ``receptive_field`` and ``jump`` of every row (see :func:`summary`)."""
    size = (int(input_shape[0]), int(input_shape[1] if len(input_shape) > 2 else 1)) if input_shape else (0, 0)
    state: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}
    current: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 1.0), (1.0, 1.0))
    for row in result.layers:
        if result.graph and row.inputs:  # the input layer (not a row) is one pixel, stride 1
            known = [state.get(name, ((1.0, 1.0), (1.0, 1.0))) for name in row.inputs]
            current = max(known, key=lambda item: item[0][0] * item[0][1])
        module = modules.get(row.name)
        geo = _geometry(module) if module is not None else []
        (r_h, r_w), (j_h, j_w) = current
        if geo == "global":
            r_h, r_w = max(r_h, float(size[0])), max(r_w, float(size[1]))
        else:
            for (k_h, k_w), (s_h, s_w), (d_h, d_w) in geo:  # type: ignore[misc]
                r_h, r_w = r_h + (k_h - 1) * d_h * j_h, r_w + (k_w - 1) * d_w * j_w
                j_h, j_w = j_h * s_h, j_w * s_w
        current = ((r_h, r_w), (j_h, j_w))
        state[row.name] = current
        row.receptive_field = (int(r_h), int(r_w))
        row.jump = (j_h, j_w)
    result.receptive_field = True
