"""``cnnlab serve``: the app of :mod:`cnnlab.serve.app` under uvicorn, on loopback unless told otherwise."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(source: str | Path, *, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 32,
          max_upload_mb: float = 10.0, token: str | None = None, engine: str = "auto", batching: bool = True,
          max_wait_ms: float = 2.0, say: Callable[[str], None] = print, **uvicorn_options: Any) -> None:
    """Load ``source`` (run folder, bundle or ``.onnx``), print the URL and serve until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise CnnlabError("FastAPI / uvicorn are not installed", where="cnnlab serve",
                          fix='install the serve extra: pip install "cnnlab[serve]"') from None
    if max_batch < 1:
        raise CnnlabError(f"--max-batch must be at least 1, got {max_batch}", where="--max-batch", fix="use e.g. 32")
    if max_upload_mb <= 0:
        raise CnnlabError(f"--max-upload-mb must be positive, got {max_upload_mb}", where="--max-upload-mb", fix="use e.g. 10")
    if not 0 <= port <= 65535:
        raise CnnlabError(f"--port {port} is not a port number", where="--port", fix="use 1-65535, e.g. 8000")
    _check_free(host, port)
    from cnnlab.serve.app import create_app

    app = create_app(source, max_batch=max_batch, max_upload_mb=max_upload_mb, token=token, batching=batching,
                     max_wait_ms=max_wait_ms, engine=engine)
    predictor = app.state.predictor
    for note in predictor.notes:
        say(f"note: {note}")
    if not _is_loopback(host) and token is None:
        say(f"warning: listening on {host} without --token: anyone who can reach this machine can use the model")
    shown = f"[{host}]" if ":" in host else host
    say(f"serving {predictor.name} ({predictor.engine}, {'batches of up to ' + str(max_batch) if batching else 'no batching'}) "
        f"at http://{shown}:{port}/  (API docs at /docs; Ctrl+C stops)")
    options = {"log_level": "warning", "access_log": False, **uvicorn_options}
    uvicorn.run(app, host=host, port=port, **options)


def _check_free(host: str, port: int) -> None:
    """Refuse a busy port or an unknown host with a fix (uvicorn would log and exit 1)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        raise CnnlabError(f"cannot listen on {host}:{port} ({error.strerror or error})", where="--host/--port",
                          fix="pick another --port (or --host), or stop what uses this one") from None
