"""Ship a model: serve (cnnlab.serve.server)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cnnlab.cli.app import app


@app.command("serve")
def serve_command(
    model: Annotated[str, typer.Argument(help="Run folder, bundle or exported .onnx file.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1, help="Images per forward pass when requests are gathered.")] = 32,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", min=0.001, help="Largest request body.")] = 10.0,
    token: Annotated[Optional[str], typer.Option("--token", envvar="CNNLAB_SERVE_TOKEN",
                                                 help="Require 'Authorization: Bearer TOKEN' on /v1/* (or set CNNLAB_SERVE_TOKEN).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="auto (ONNX Runtime when installed), onnxruntime or torch.")] = "auto",
    batching: Annotated[bool, typer.Option("--batching/--no-batching", help="Gather concurrent requests into one forward pass.")] = True,
) -> None:
    """Serve a model over HTTP with a web page to try it: predictions, heat maps, the model card."""
    from cnnlab.serve.server import serve

    serve(model, host=host, port=port, max_batch=max_batch, max_upload_mb=max_upload_mb, token=token, engine=engine,
          batching=batching, say=typer.echo)
