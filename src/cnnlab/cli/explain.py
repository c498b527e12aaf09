"""Explanations: explain, features, filters (cnnlab.explain)."""

from __future__ import annotations

import warnings
from typing import Annotated, Optional

import typer

from cnnlab.cli.app import app

_METHODS = "cam, gradcam, gradcam++, guided-gradcam, integrated-gradients, saliency, occlusion"


@app.command("explain")
def explain_command(
    run: Annotated[str, typer.Argument(help="A run folder or bundle (cnnlab train --out).")],
    images: Annotated[list[str], typer.Argument(help="Image files or folders of them.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Folder for the PNGs (one per image).")],
    method: Annotated[str, typer.Option("--method", "-m", help=f"One of: {_METHODS}.")] = "gradcam",
    class_: Annotated[Optional[str], typer.Option("--class", help="Class to explain (name or index); "
                                                                  "default the predicted one.")] = None,
    layer: Annotated[Optional[str], typer.Option("--layer", help="Layer as `cnnlab summary` prints it; "
                                                                 "default the last feature map.")] = None,
) -> None:
    """Heat maps of what the model looks at: one PNG per image (picture, heat map, overlay)."""
    from cnnlab.explain.runs import explain_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = explain_files(run, images, out, method=method, target=class_, layer=layer)
    for record in records:
        note = "  (empty map: nothing speaks for this class at that layer)" if record["empty"] else ""
        typer.echo(f"{record['file']}: {record['predicted']}, {record['method']} of {record['explained']} "
                   f"at {record['layer']} -> {record['png']}{note}")
    for warning in caught:
        if "has no positive value" not in str(warning.message):
            typer.echo(f"warning: {warning.message}", err=True)


@app.command("features")
def features_command(
    run: Annotated[str, typer.Argument(help="A run folder or bundle.")],
    image: Annotated[str, typer.Argument(help="One image file.")],
    out: Annotated[str, typer.Option("--out", "-o", help="The grid PNG to write.")],
    layer: Annotated[Optional[str], typer.Option("--layer", help="Layer as `cnnlab summary` prints it; "
                                                                 "default the last feature map.")] = None,
) -> None:
    """The feature maps (activations) of one layer for one image, as a grid PNG."""
    from cnnlab.explain.runs import features_png

    done = features_png(run, image, layer, out)
    typer.echo(f"{done['maps']} feature maps of {done['layer']} ({done['size'][0]}x{done['size'][1]}) -> {done['png']}")


@app.command("filters")
def filters_command(
    run: Annotated[str, typer.Argument(help="A run folder or bundle.")],
    out: Annotated[str, typer.Option("--out", "-o", help="The grid PNG to write.")],
    layer: Annotated[Optional[str], typer.Option("--layer", help="A convolutional layer; default the first.")] = None,
) -> None:
    """The learned filters (weights) of a convolutional layer as a grid PNG (RGB filters in colour)."""
    from cnnlab.explain.runs import filters_png

    done = filters_png(run, layer, out)
    typer.echo(f"{done['filters']} filters {done['kernel'][0]}x{done['kernel'][1]} x {done['channels']} channel(s) "
               f"of {done['layer']} -> {done['png']}")
