"""The typer app every command module adds its commands to.

Heavy imports (torch) happen inside the command functions so that
``cnnlab --help`` stays instant.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cnnlab import __version__

app = typer.Typer(
    name="cnnlab",
    help="Convolutional neural networks on images: filters, models, training, explanations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnnlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """cnnlab: from one convolution to a trained, explained, exported model."""
