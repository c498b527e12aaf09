"""The experiment file: one YAML (or JSON) document describing a training run.

Validated with pydantic (unknown fields refused), with errors that name the
file, the line (from PyYAML's node marks), the field, what was wrong and the
fix. Command-line flags are merged into the raw document *before* validation,
so a bad flag is reported like a bad field. A field is *unset* when neither the
file nor a flag names it (pydantic's ``model_fields_set``), even where its value
equals the default: a zoo model's training recipe (:mod:`cnnlab.train.recipe`)
fills only unset fields. The resolved config (every default filled in) is saved
in the run as ``config.yaml``, which a resumed run re-uses as it is.

Example::

    model: mnist_3conv            # a zoo name, a spec file, or an inline spec
    data: {source: mnist, val_split: 0.1}
    augment: {rotation_range: 10, zoom_range: 0.1}
    epochs: 10
    batch_size: 32
    optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
    schedule: {name: cosine}
    loss: {name: sparse_categorical_crossentropy, label_smoothing: 0.1}
    callbacks: {early_stopping: {patience: 5}}
    transfer: {pretrained: runs/base, freeze: features, freeze_epochs: 1, backbone_lr_mult: 0.1}
    seed: 0
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cnnlab.errors import CnnlabError, shorten
from cnnlab.files import existing, is_file

CONFIG_FILE = "config.yaml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(Strict):
    source: str = Field(description="built-in name, image folder, .tar(.gz) or CSV")
    val_split: float | None = Field(0.2, ge=0.0, lt=1.0, description="validation fraction (0: none)")
    val: str | None = Field(None, description="an explicit validation set (name, folder or CSV)")
    image_size: tuple[Annotated[int, Field(ge=1, le=4096)], Annotated[int, Field(ge=1, le=4096)]] | None = Field(
        None, description="(height, width) the images are resized to, 1 .. 4096 each")
    channels: Literal[1, 3] | None = None
    task: Literal["classification", "regression"] | None = None
    standardize: bool = False
    root: str | None = None
    limit: int | None = Field(None, ge=1, description="use only N training (and N validation) images, spread evenly over the set")


class OptimizerConfig(Strict):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    lr: Union[float, Literal["find"]] = Field(
        1e-3, description="learning rate (> 0), or 'find': the range test's suggestion (cnnlab lr-find)")
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)

    @field_validator("lr")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if value != "find" and not value > 0:
            raise ValueError("must be > 0 (or 'find')")
        return value


class ScheduleConfig(Strict):
    name: Literal["constant", "step", "exponential", "cosine", "onecycle", "plateau", "inverse_time"] = "constant"
    interval: Literal["step", "epoch"] | None = None
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0.0)
    eta_min: float = Field(0.0, ge=0.0)
    pct_start: float = Field(0.3, gt=0.0, lt=1.0)
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: int = Field(5, ge=0)
    monitor: str = "val_loss"
    decay: float = Field(0.0, ge=0.0, description="inverse_time: Keras's legacy SGD decay, lr / (1 + decay * step)")


class LossConfig(Strict):
    name: str | None = Field(None, description="default: from the task and the model's output")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    class_weight: Union[Literal["auto"], dict[str, float], list[float], None] = None
    huber_delta: float = Field(1.0, gt=0.0)


class CheckpointConfig(Strict):
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    save_best_only: bool = True
    filepath: str | None = None


class EarlyStoppingConfig(Strict):
    monitor: str = "val_loss"
    patience: int = Field(5, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    mode: Literal["auto", "min", "max"] = "auto"
    restore_best_weights: bool = True


class ReduceLROnPlateauConfig(Strict):
    monitor: str = "val_loss"
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: int = Field(10, ge=0)
    min_delta: float = Field(1e-4, ge=0.0)
    mode: Literal["auto", "min", "max"] = "auto"
    cooldown: int = Field(0, ge=0)
    min_lr: float = Field(0.0, ge=0.0)


class CallbacksConfig(Strict):
    model_checkpoint: CheckpointConfig | None = Field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig | None = None
    reduce_lr_on_plateau: ReduceLROnPlateauConfig | None = None
    terminate_on_nan: bool = True
    csv_logger: bool = True


class TransferConfig(Strict):
    """Transfer learning (see :mod:`cnnlab.train.transfer`)."""

    pretrained: str | None = Field(None, description="a run folder / bundle, a .pth / .safetensors state dict, or a .keras / .h5 file")
    freeze: Union[int, str, list[str], None] = Field(
        None, description="'features', 'none', a number of leading blocks, or layer names / glob patterns "
                          "(default: 'features' when freeze_epochs > 0, else 'none')")
    freeze_epochs: int = Field(0, ge=0, description="train the new head alone this many epochs, then unfreeze (0: keep frozen)")
    backbone_lr_mult: float = Field(1.0, gt=0.0, description="the backbone's learning rate as a fraction of the head's")
    train_bn: bool = Field(False, description="let frozen parts' batch norms train (default: inference mode, statistics fixed)")

    @property
    def freeze_setting(self) -> Any:
        if self.freeze is not None:
            return self.freeze
        return "features" if self.freeze_epochs else "none"


class Experiment(Strict):
    model: Union[str, dict[str, Any], list[Any], None] = Field(
        None, description="zoo name, spec file (.yaml/.json) or inline spec; default: picked for the data")
    model_options: dict[str, Any] = Field(default_factory=dict)
    data: DataConfig
    augment: dict[str, Any] | None = None
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    seed: int = Field(0, ge=0, lt=2**32, description="random seed, 0 .. 2**32 - 1")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    metrics: list[str] | None = None
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    checkpoint_every: int = Field(500, ge=0, description="steps between mid-epoch states (0: epoch ends only)")
    device: str = "auto"
    compile: bool = False
    sync_bn: bool = Field(False, description="batch norm statistics over all processes (SyncBatchNorm; CUDA only)")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="bf16 autocast ('auto': bf16 on CUDA and on CPUs with AVX-512 BF16 / AMX, else fp32)")
    out: str | None = None


def is_spec_file(model: str) -> bool:
    """Whether the experiment's ``model`` string names a spec file rather than a zoo model."""
    return model.lower().endswith((".yaml", ".yml", ".json")) or is_file(model, where=f"--model {model}")


# --------------------------------------------------------------------------- reading


def read_document(path: str | Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """The raw mapping of a YAML / JSON file and its node tree (for line numbers).

    A ``.json`` file is read as strict JSON (YAML would accept some broken JSON);
    anything else as YAML. Not UTF-8, nested too deeply, or not a mapping: one
    clear error naming the file.
    """
    path = existing(path, "file", what="experiment file", fix="give the path of a .yaml or .json file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CnnlabError(f"cannot read it ({error.strerror or error})", where=str(path),
                          fix="check the file's permissions") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CnnlabError(f"is not UTF-8 text (byte {error.start} is {raw[error.start:error.start + 1]!r})",
                          where=str(path), fix="save it as UTF-8 text (YAML or JSON)") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise CnnlabError(f"is not valid JSON ({error.msg}, column {error.colno})", where=f"{path}:{error.lineno}",
                              fix="check the commas, quotes and brackets (or write the file as YAML)") from None
        except RecursionError:
            raise _too_deep(path) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if expanded_size(node) > MAX_NODES:
            raise CnnlabError(f"expands to more than {MAX_NODES:,} values (YAML aliases repeating aliases)",
                              where=str(path), fix="write the experiment out without nested &anchor / *alias chains")
        if path.suffix.lower() != ".json":
            data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise CnnlabError(f"is not valid YAML ({problem})", where=where,
                          fix="check the indentation and the ':' after each key") from None
    except RecursionError:
        raise _too_deep(path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CnnlabError(f"must be a mapping of fields, got a {type(data).__name__}", where=str(path),
                          fix="write fields such as 'data: {source: shapes}' at the top level")
    return data, node


MAX_NODES = 100_000  # values an experiment file may expand to (a real one has a few hundred)


def expanded_size(node: yaml.Node | None) -> int:
    """How many nodes the document holds once every alias is expanded, counted without expanding."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        sizes[id(n)] = 1  # a cycle (only possible with aliases to a parent) counts once
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in n.value)
        else:
            total = 1
        sizes[id(n)] = total
        return total

    return 0 if node is None else size(node)


def _too_deep(path: Path) -> CnnlabError:
    return CnnlabError("is nested too deeply to read", where=str(path),
                       fix="an experiment file is a few levels deep: remove the runaway brackets or indentation")


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` ({'optimizer.lr': 0.1, ...}, dotted keys) applied; None values skipped."""
    out: dict[str, Any] = _deep_copy(base)
    for dotted, value in overrides.items():
        if value is None:
            continue
        keys = dotted.split(".")
        target = out
        for key in keys[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[keys[-1]] = value
    return out


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def validate(raw: Mapping[str, Any], *, source: str = "config", node: yaml.Node | None = None,
             flags: Mapping[str, str] | None = None) -> Experiment:
    """Validate a raw mapping; the first error becomes a :class:`CnnlabError` naming file, line, field, fix.

    ``flags`` maps dotted field names to the command-line flag that set them,
    so an error in a flag names the flag.
    """
    try:
        return Experiment.model_validate(dict(raw))
    except ValidationError as error:
        first = error.errors()[0]
        loc = [str(part) for part in first["loc"]]
        field = ".".join(loc)
        flag = (flags or {}).get(field)
        where = f"{flag} ({field})" if flag else f"{_locate(source, node, loc)}: field {field!r}"
        raise CnnlabError(_describe(first), where=where, fix=_fix(first, loc)) from None


def _locate(source: str, node: yaml.Node | None, loc: Sequence[str]) -> str:
    """``file:line`` of the deepest node along ``loc`` that exists (the parent for a missing field)."""
    line = None
    current = node
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            match = next(((k, v) for k, v in current.value if str(k.value) == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            current = match[1]
        elif isinstance(current, yaml.SequenceNode) and part.isdigit() and int(part) < len(current.value):
            current = current.value[int(part)]
            line = current.start_mark.line + 1
        else:
            break
    return f"{source}:{line}" if line is not None else source


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "missing":
        return "is required"
    return f"{error['msg'].lower()} (got {shorten(repr(value))})"


def _known_fields(loc: Sequence[str]) -> list[str]:
    model: type[BaseModel] = Experiment
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        nested = next((a for a in candidates if issubclass(a, BaseModel)), None)
        if nested is None:
            return []
        model = nested
    return list(model.model_fields)


def _fix(error: Mapping[str, Any], loc: Sequence[str]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_fields(loc)
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{hint}remove it; the known fields here are {', '.join(known)}"
    if kind == "missing":
        return f"add '{loc[-1]}' (see `cnnlab train --help`)"
    context = error.get("ctx") or {}
    if "expected" in context:
        return f"use one of {context['expected']}"
    if "gt" in context or "ge" in context or "lt" in context or "le" in context:
        bounds = ", ".join(f"{k} {v}" for k, v in context.items() if k in ("gt", "ge", "lt", "le"))
        return f"give a value with {bounds.replace('gt', '>').replace('ge', '>=').replace('lt', '<').replace('le', '<=')}"
    return f"give a value of the right type for {'.'.join(loc)}"


def load_experiment(path: str | Path | None, overrides: Mapping[str, Any] | None = None,
                    flags: Mapping[str, str] | None = None) -> Experiment:
    """Read ``path`` (optional), apply the dotted ``overrides`` (flags), validate."""
    raw: dict[str, Any] = {}
    node = None
    source = "command line"
    if path is not None:
        raw, node = read_document(path)
        source = str(path)
    if isinstance(raw.get("data"), str):  # 'data: mnist' is short for 'data: {source: mnist}'
        raw["data"] = {"source": raw["data"]}
    merged = merge(raw, overrides or {})
    if "data" not in merged:
        raise CnnlabError("no data set given", where=source, fix="pass DATA (a name, folder or CSV) or 'data: {source: ...}'")
    given = {k: v for k, v in (flags or {}).items() if (overrides or {}).get(k) is not None}
    return validate(merged, source=source, node=node, flags=given)


def dump(experiment: Experiment) -> str:
    """The resolved config as YAML text (what the run saves)."""
    return yaml.safe_dump(experiment.model_dump(mode="json"), sort_keys=False)
