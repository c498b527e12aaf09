"""The command line: thin; every command calls a public function of the package.

One module per command group adds its commands to :data:`cnnlab.cli.app.app`;
a new group is a new module here plus its name in :data:`COMMAND_MODULES`.
Errors a user can cause are :class:`cnnlab.CnnlabError`: printed as one line on
stderr, exit status 2, no traceback. Heavy imports (torch) happen inside the
commands so that ``cnnlab --help`` stays instant.
"""

from __future__ import annotations

import importlib
import sys

import typer

from cnnlab.cli.app import app
from cnnlab.errors import CnnlabError

COMMAND_MODULES = ("lab", "models", "data", "train", "transfer", "explain")

for _name in COMMAND_MODULES:
    importlib.import_module(f"cnnlab.cli.{_name}")


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


__all__ = ["COMMAND_MODULES", "app", "main"]
