"""Models: summary, models (cnnlab.spec, cnnlab.models)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cnnlab.cli.app import app
from cnnlab.errors import CnnlabError

from cnnlab.cli.common import parse_shape

def _zoo_model(name: str, input_shape: tuple[int, ...] | None):  # noqa: ANN202
    """A registered zoo model, or a clear error when neither a file nor a zoo name."""
    try:
        from cnnlab.models import create, names
    except ImportError:
        create = names = None  # the zoo is optional here
    looks_like_file = any(name.endswith(s) for s in (".yaml", ".yml", ".json")) or "/" in name
    if create is None or looks_like_file or name not in names():
        known = f" or a zoo model ({', '.join(sorted(names()))})" if names is not None and not looks_like_file else ""
        raise CnnlabError(f"no spec file {name!r}", where="summary", fix=f"give the path of a .yaml / .json spec{known}")
    return create(name, **({"input_shape": input_shape} if input_shape else {}))


@app.command("summary")
def summary_command(
    spec: Annotated[str, typer.Argument(help="A model spec (.yaml / .json), or the name of a zoo model.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    input_shape: Annotated[Optional[str], typer.Option("--input-shape", help="H,W,C: the input to summarise the model on (default: the spec's or zoo model's own).")] = None,
    receptive_field: Annotated[bool, typer.Option("--receptive-field", help="Add each layer's receptive field and effective stride.")] = False,
    freeze: Annotated[Optional[str], typer.Option(help="Show the model with these layers frozen: features, N blocks, or names / patterns.")] = None,
) -> None:
    """Print a model's layers, output shapes and parameter counts, as Keras's model.summary()."""
    import json
    from pathlib import Path

    from cnnlab.spec import SpecError, load_spec, summary

    shape = parse_shape(input_shape) if input_shape else None
    from cnnlab.files import path_kind

    if spec.lower().endswith((".keras", ".h5", ".hdf5")):
        from cnnlab.spec.keras_model import import_keras

        target = import_keras(spec)
    else:
        target = load_spec(spec) if path_kind(spec, where=spec) == "file" else _zoo_model(spec, shape)
    if freeze is not None:
        from cnnlab.cli.train import _freeze_option
        from cnnlab.spec import build
        from cnnlab.train.transfer import apply_freeze, freeze_plan

        from cnnlab.spec.build import with_input_shape

        if not hasattr(target, "parameters"):  # a spec: built on the input shape asked for, then frozen
            target = build(with_input_shape(target, shape) if shape else target)
        apply_freeze(freeze_plan(target, _freeze_option(freeze)))
    try:
        result = summary(target, input_shape=shape, receptive_field=receptive_field)
        result.show_trainable = any(not row.trainable for row in result.layers if row.params)
    except SpecError as error:
        # The table up to the failing layer, then the one-line error (main prints it).
        if error.partial is not None and not as_json:
            error.partial.print()
        raise
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        result.print()


@app.command("models")
def models_command(
    name: Annotated[Optional[str], typer.Argument(help="A zoo model: show its details and options.")] = None,
    family: Annotated[Optional[str], typer.Option("--family", help="Only this family (lenet, notes, vgg, ...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the zoo: every model with its input size, parameter count and reference."""
    import json

    from cnnlab.models import FAMILIES, info, names

    if family is not None and family not in FAMILIES:
        raise CnnlabError(f"unknown family {family!r}", where="--family", fix=f"use one of {', '.join(FAMILIES)}")
    entries = [info(name)] if name else [info(n) for n in names(family)]
    rows = [
        {
            "name": e.name,
            "family": e.family,
            "input_shape": list(e.input_shape),
            "min_size": e.min_size,
            "num_classes": e.num_classes,
            "params": e.params,
            "trainable_params": e.trainable,
            "description": e.description,
            "reference": e.reference,
            "options": e.options,
            "torchvision_weights": e.torchvision is not None,
            "recipe": dict(e.recipe.settings) if e.recipe is not None else None,
        }
        for e in entries
    ]
    if as_json:
        typer.echo(json.dumps(rows if name is None else rows[0], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if name:
        row = rows[0]
        for key in ("name", "description", "family", "reference"):
            console.print(f"{key}: {row[key]}", markup=False)
        height, width, channels = row["input_shape"]
        console.print(f"input: {height}x{width}x{channels} (smallest {row['min_size']}x{row['min_size']})", markup=False)
        console.print(f"classes: {row['num_classes']}", markup=False)
        console.print(f"params: {row['params']:,} (trainable {row['trainable_params']:,})", markup=False)
        options = ", ".join(f"{k}={v!r}" for k, v in row["options"].items()) or "none"
        console.print(f"options: {options}", markup=False)
        console.print(f"torchvision weights: {'yes' if row['torchvision_weights'] else 'no'}", markup=False)
        recipe = entries[0].recipe
        console.print(f"training recipe: {recipe.summary if recipe else 'none (the generic defaults)'}", markup=False)
        return
    table = Table(title=f"cnnlab zoo: {len(rows)} models (counts as Keras: BN moving statistics non-trainable)")
    table.add_column("name", no_wrap=True)
    for column in ("input", "params", "trainable"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("reference", overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            "x".join(map(str, row["input_shape"])),
            f"{row['params']:,}",
            f"{row['trainable_params']:,}",
            row["reference"],
        )
    console.print(table)


