"""Read a model spec from YAML or JSON, remembering the line of every layer and field.

:func:`load_spec` returns a :class:`LoadedSpec`, a plain ``dict`` (JSON-safe)
that also knows its file and line numbers, so that :func:`cnnlab.spec.build`
can say ``model.yaml:12: layers[3] 'conv2d_1' (Conv2D), field 'kernel_size'``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from cnnlab.files import path_kind
from cnnlab.ops.limits import brief
from cnnlab.spec.errors import SpecError

# A spec is a few KB; a file of megabytes is a data or weights file given by mistake.
MAX_SPEC_BYTES = 4 * 1024 * 1024


class LoadedSpec(dict):
    """A spec dict plus ``source`` (the path) and ``lines``.

    ``lines[(i,)]`` is the 1-based line of ``layers[i]``, ``lines[(i, key)]`` the
    line of its field ``key``, ``lines[(key,)]`` the line of a top-level key.
    """

    source: str | None = None
    lines: dict[tuple[Any, ...], int]

    def __init__(self, data: dict[str, Any], source: str | None = None, lines: dict[tuple[Any, ...], int] | None = None) -> None:
        super().__init__(data)
        self.source = source
        self.lines = lines or {}


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a YAML or JSON spec file; a bare list of layers becomes ``{layers: [...]}``.

    Syntax errors name the file, line and column.
    """
    file = Path(path)
    where = str(file) if len(str(file)) <= 120 else brief(str(file), 120)
    kind = path_kind(file, where=where)  # a name too long for the file system ... is one clear error there
    if kind != "file":
        what = "is a folder, not a spec file" if kind == "dir" else "no spec file at this path"
        raise SpecError(what, where=where, fix="check the path; specs are .yaml, .yml or .json files")
    try:
        size = file.stat().st_size
    except OSError as error:
        raise SpecError(f"cannot be read ({error.strerror or error})", where=where, fix="check the file's permissions") from None
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            f"is {size:,} bytes, over the limit of {MAX_SPEC_BYTES:,} for a spec",
            where=where,
            fix="give the model spec (a few KB of YAML or JSON), not a data or weights file",
        )
    try:
        text = file.read_bytes().decode("utf-8")
    except OSError as error:
        raise SpecError(f"cannot be read ({error.strerror or error})", where=where, fix="check the file's permissions") from None
    except UnicodeDecodeError as error:
        raise SpecError(
            f"is not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start})",
            where=where,
            fix="save the spec as UTF-8 YAML or JSON text (not a binary file)",
        ) from None
    try:
        data = _parse(text, file, where)
    except RecursionError:
        raise SpecError(
            "is nested too deeply to read",
            where=where,
            fix="a spec is a mapping with a list of layers: a few levels of nesting, not hundreds",
        ) from None
    if isinstance(data, list):
        data = {"layers": data}
    if not isinstance(data, dict):
        raise SpecError(
            f"a spec is a mapping with 'input_shape' and 'layers' (or a list of layers), got {type(data).__name__}",
            where=where,
            fix="write e.g. {input_shape: [28, 28, 1], layers: [{type: Conv2D, filters: 32, kernel_size: 3}]}",
        )
    return LoadedSpec(data, source=str(file), lines=_line_table(text))


def _parse(text: str, file: Path, where: str) -> Any:
    if file.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(f"invalid JSON: {error.msg}", where=f"{where}:{error.lineno}:{error.colno}", fix="fix the JSON syntax at that place") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        raise SpecError(f"invalid YAML: {error.problem or error}", where=at, fix="fix the YAML syntax at that place (indentation, colons, brackets)") from None
    except yaml.YAMLError as error:
        raise SpecError(f"invalid YAML: {str(error)[:200]}", where=where, fix="fix the YAML syntax") from None


def _line_table(text: str) -> dict[tuple[Any, ...], int]:
    # JSON is (almost always) YAML too; line numbers are a courtesy, never an error.
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return {}
    lines: dict[tuple[Any, ...], int] = {}
    layers = None
    if isinstance(root, yaml.SequenceNode):
        layers = root
    elif isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            lines[(key.value,)] = key.start_mark.line + 1
            if key.value == "layers" and isinstance(value, yaml.SequenceNode):
                layers = value
    if layers is not None:
        for i, item in enumerate(layers.value):
            lines[(i,)] = item.start_mark.line + 1
            if isinstance(item, yaml.MappingNode):
                for key, _ in item.value:
                    lines[(i, key.value)] = key.start_mark.line + 1
    return lines
