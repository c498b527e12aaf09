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

from cnnlab.spec.errors import SpecError


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
    if not file.is_file():
        raise SpecError(f"no spec file {str(file)!r}", where=str(file), fix="check the path; specs are .yaml, .yml or .json files")
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(f"invalid JSON: {error.msg}", where=f"{file}:{error.lineno}:{error.colno}", fix="fix the JSON syntax at that place") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else str(file)
            raise SpecError(f"invalid YAML: {error.problem or error}", where=where, fix="fix the YAML syntax at that place (indentation, colons, brackets)") from None
        except yaml.YAMLError as error:
            raise SpecError(f"invalid YAML: {error}", where=str(file), fix="fix the YAML syntax") from None
    if isinstance(data, list):
        data = {"layers": data}
    if not isinstance(data, dict):
        raise SpecError(
            f"a spec is a mapping with 'input_shape' and 'layers' (or a list of layers), got {type(data).__name__}",
            where=str(file),
            fix="write e.g. {input_shape: [28, 28, 1], layers: [{type: Conv2D, filters: 32, kernel_size: 3}]}",
        )
    return LoadedSpec(data, source=str(file), lines=_line_table(text))


def _line_table(text: str) -> dict[tuple[Any, ...], int]:
    # JSON is (almost always) YAML too; line numbers are a courtesy, never an error.
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
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
