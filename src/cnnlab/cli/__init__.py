"""The command line: thin; every command calls a public function of the package.

One module per command group adds its commands to :data:`cnnlab.cli.app.app`;
a new group is a new module here plus its name in :data:`COMMAND_MODULES`.
Errors a user can cause are :class:`cnnlab.CnnlabError`: printed as one line on
stderr, exit status 2, no traceback. So are usage errors (an unknown option, a
value of the wrong type) and what the operating system refuses (an ``OSError``:
a full disk, a permission), and warnings are one ``warning:`` line each. Heavy imports (torch) happen inside the
commands so that ``cnnlab --help`` stays instant.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import typer

from typer import Abort

try:  # typer >= 0.20 carries its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from cnnlab.cli.app import app
from cnnlab.errors import MAX_PART, CnnlabError, shorten

COMMAND_MODULES = ("lab", "models", "data", "train", "transfer", "explain", "report", "export", "serve")

for _name in COMMAND_MODULES:
    importlib.import_module(f"cnnlab.cli.{_name}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    # One line, no source location: the message itself names the file or folder.
    typer.echo(f"warning: {shorten(message, 2 * MAX_PART)}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cnnlab`` script; returns the exit status."""
    # Only the printer changes (not the filters, which modules set when first imported).
    shown, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        return _run(argv)
    finally:
        warnings.showwarning = shown


def _run(argv: list[str] | None) -> int:
    try:
        code = app(args=argv, prog_name="cnnlab", standalone_mode=False)
    except CnnlabError as error:
        typer.echo(f"error: {error}", err=True)
        return 2
    except NoArgsIsHelpError as error:  # `cnnlab` or `cnnlab data` alone: the help, as click prints it
        error.show()
        return 2
    except UsageError as error:
        command = error.ctx.command_path if error.ctx is not None else "cnnlab"
        typer.echo(f"error: {CnnlabError(error.format_message(), fix=f'see `{command} --help`')}", err=True)
        return 2
    except ClickException as error:
        typer.echo(f"error: {shorten(error.format_message(), 2 * MAX_PART)}", err=True)
        return error.exit_code
    except Abort:
        typer.echo("error: interrupted", err=True)
        return 130
    except OSError as error:  # what the system refused (a full disk, a permission) is the user's to fix
        where = error.filename if error.filename is not None else None
        message = CnnlabError(error.strerror or str(error), where=None if where is None else str(where),
                              fix="check the path, its permissions and the free space")
        typer.echo(f"error: {message}", err=True)
        return 2
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return code if isinstance(code, int) else 0


__all__ = ["COMMAND_MODULES", "app", "main"]
