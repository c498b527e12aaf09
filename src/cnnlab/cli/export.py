"""Ship a model: export (cnnlab.serve.export)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cnnlab.cli.app import app


@app.command("export")
def export_command(
    run: Annotated[str, typer.Argument(help="Run folder or bundle.")],
    out: Annotated[Optional[str], typer.Option("-o", "--out", help="The .onnx file to write (default RUN/model.onnx).")] = None,
    opset: Annotated[Optional[int], typer.Option("--opset", min=7, help="ONNX opset (default 18).")] = None,
) -> None:
    """Export to ONNX (uint8 NHWC images in, probabilities out), checked with ONNX Runtime before it is written."""
    from pathlib import Path

    from cnnlab.serve.export import export_onnx

    target = Path(out) if out else Path(run) / "model.onnx"
    export_onnx(run, target, opset=opset, say=typer.echo)
