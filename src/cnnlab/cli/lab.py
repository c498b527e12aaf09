"""The convolution lab: filter, match, shape, demo (cnnlab.ops)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cnnlab.cli.app import app
from cnnlab.errors import CnnlabError


@app.command("filter")
def filter_command(
    image: Annotated[str, typer.Argument(help="Image file (PNG, JPEG, ...); colour is filtered per channel.")],
    kernel: Annotated[
        str,
        typer.Option(
            "--kernel",
            "-k",
            help='Kernel: a name (sobel-x, sobel-y, box:5, box-ones, gaussian:5:1.0, gaussian-121, sharpen, '
            'diagonal-45, diagonal-135, laplacian-4, laplacian-8, emboss, identity) or numbers "0 -1 0; -1 5 -1; 0 -1 0".',
        ),
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the filtered image (.png).")],
    mode: Annotated[str, typer.Option(help="corr: cross-correlation (CNN layers, cv2.filter2D); conv: flips the kernel.")] = "corr",
    padding: Annotated[str, typer.Option(help="same, valid, full, N, or TOP,BOTTOM,LEFT,RIGHT.")] = "same",
    border: Annotated[str, typer.Option(help="What the padding holds: zeros, reflect, symmetric, replicate, wrap.")] = "reflect",
    stride: Annotated[str, typer.Option(help="Step between outputs: N or ROWS,COLS.")] = "1",
    dilation: Annotated[str, typer.Option(help="Spacing of the kernel taps: N or ROWS,COLS.")] = "1",
    gray: Annotated[bool, typer.Option("--gray", help="Convert the image to gray first.")] = False,
    scale: Annotated[str, typer.Option(help="To 8 bits: auto, clip, minmax or abs (auto: abs for edge kernels).")] = "auto",
    compare: Annotated[Optional[str], typer.Option(help="Also write a before / kernel / after figure here (.png).")] = None,
) -> None:
    """Convolve or cross-correlate an image with a kernel."""
    from cnnlab.ops.lab import filter_image

    done = filter_image(
        image, kernel, output, mode=mode, padding=padding, border=border, stride=stride,
        dilation=dilation, gray=gray, scale=scale, compare=compare,
    )  # fmt: skip
    typer.echo(done.summary())


@app.command("match")
def match_command(
    image: Annotated[str, typer.Argument(help="The photo to search.")],
    template: Annotated[str, typer.Argument(help="The piece to find (smaller than the photo).")],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the score heat map here (.png) and the boxed photo beside it.")] = None,
    box: Annotated[Optional[str], typer.Option(help="Where to write the photo with the match boxed (default: <output>-box.png).")] = None,
    color: Annotated[bool, typer.Option("--color", help="Match in colour instead of gray.")] = False,
) -> None:
    """Find a template in a photo by normalised cross-correlation (OpenCV TM_CCOEFF_NORMED)."""
    from cnnlab.ops.lab import match_images

    typer.echo(match_images(image, template, output, box_output=box, color=color).summary())


@app.command("shape")
def shape_command(
    input: Annotated[str, typer.Option("--input", "-i", help="Input H x W x C, e.g. 28x28x1.")],  # noqa: A002
    kernel: Annotated[str, typer.Option("--kernel", "-k", help="Kernel size K or KH x KW, e.g. 5 or 5x3.")],
    stride: Annotated[str, typer.Option(help="N or ROWS,COLS.")] = "1",
    padding: Annotated[str, typer.Option(help="valid, same, full, N or TOP,BOTTOM,LEFT,RIGHT.")] = "valid",
    dilation: Annotated[str, typer.Option(help="N or ROWS,COLS.")] = "1",
    filters: Annotated[int, typer.Option(help="Number of filters (output channels).")] = 1,
) -> None:
    """Output shape of a convolution, with the formula worked step by step."""
    from cnnlab.ops.lab import shape_report

    typer.echo(shape_report(input, kernel, stride=stride, padding=padding, dilation=dilation, filters=filters))


@app.command("demo")
def demo_command(
    out: Annotated[str, typer.Option("--out", help="Folder to write the demo files to (e.g. lab-demo).")],
) -> None:
    """A short convolution lab on a picture made in code: filters, a template match, output shapes."""
    from cnnlab.ops.lab import run_demo

    for path, what in run_demo(out):
        typer.echo(f"wrote {path}: {what}")



