"""The report commands: ``cnnlab report RUN`` and ``cnnlab compare RUN...`` (cnnlab.report)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cnnlab.cli.app import app


@app.command("report")
def report_command(
    run: Annotated[str, typer.Argument(help="Run folder (the --out of `cnnlab train`).")],
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="HTML file to write (default RUN/report.html).")] = None,
) -> None:
    """Write the run's report: one self-contained HTML page (data, model, curves, evaluation, a look inside)."""
    from cnnlab.report import write_report

    path = write_report(run, out)
    typer.echo(f"report: {path}")


@app.command("compare")
def compare_command(
    runs: Annotated[list[str], typer.Argument(help="Two or more run folders.")],
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="HTML file to write (default ./compare.html).")] = None,
) -> None:
    """Compare runs side by side: config differences, best and final metrics, curves overlaid."""
    from cnnlab.report import compare_runs

    path = compare_runs(runs, out)
    typer.echo(f"comparison: {path}")
