"""The command line: thin; every command calls a public function of the package.

Errors a user can cause are :class:`cnnlab.CnnlabError`: printed as one line on
stderr, exit status 2, no traceback. Heavy imports (torch) happen inside the
commands so that ``cnnlab --help`` stays instant.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cnnlab import __version__
from cnnlab.errors import CnnlabError

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


# Each area adds its commands in its own section below; imports of the package
# happen inside the command functions.

# --- convolution lab: filter, match, shape, demo (cnnlab.ops) ---


# --- models: summary, models (cnnlab.spec, cnnlab.models) ---


# --- data: data inspect (cnnlab.data) ---


# --- training: train, evaluate, predict (cnnlab.train) ---


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cnnlab`` script; returns the exit status."""
    try:
        app(args=argv, prog_name="cnnlab")
    except CnnlabError as error:
        typer.echo(f"error: {error}", err=True)
        return 2
    except SystemExit as done:  # click's standalone mode: usage errors exit 2
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
