"""Helpers the command modules share: shape and ``--augment`` parsing."""

from __future__ import annotations

from cnnlab.errors import CnnlabError, shorten


def parse_shape(text: str) -> tuple[int, ...]:
    """``--input-shape`` text (``32,32,3`` or ``32x32x3``) -> a tuple of positive ints, or a one-line error."""
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise CnnlabError(f"bad input shape {text!r}", where="--input-shape", fix="write height,width,channels, e.g. 224,224,3")
    return shape


def augment_options(items: list[str] | None) -> dict | None:
    """``--augment KEY=VALUE`` (repeatable; values in YAML: 0.2, true, [0.8, 1.2]) or a YAML/JSON file."""
    from pathlib import Path

    import yaml

    from cnnlab.files import path_kind

    if not items:
        return None
    options: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep and path_kind(item, where=f"--augment {item}") == "file":
            try:
                loaded = yaml.safe_load(Path(item).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError) as error:
                reason = "nested too deeply" if isinstance(error, RecursionError) else shorten(str(error), 120)
                raise CnnlabError(f"cannot read it ({reason})", where=item,
                                  fix="give a UTF-8 YAML or JSON mapping of augmentation options") from None
            loaded = loaded.get("augment", loaded) if isinstance(loaded, dict) else loaded
            if not isinstance(loaded, dict):
                raise CnnlabError("is not a mapping of augmentation options", where=item,
                                  fix="write e.g. `rotation_range: 10` lines")
            options.update(loaded)
            continue
        if not sep or not key.strip():
            raise CnnlabError(f"{shorten(repr(item))} is neither KEY=VALUE nor a file", where="--augment",
                              fix="e.g. --augment rotation_range=20 --augment horizontal_flip=true")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError):
            raise CnnlabError(f"cannot read the value of {shorten(repr(key))}", where="--augment",
                              fix="e.g. zoom_range=[0.8,1.2]") from None
    return options
