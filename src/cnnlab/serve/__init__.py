"""Ship a model: ONNX export checked with ONNX Runtime, and an HTTP server with a web page.

``export_onnx(run, "model.onnx")`` (extra ``export``); ``create_app(run)`` / ``serve(run)``
(extra ``serve``); ``load_onnx("model.onnx").predict(images)``. Imports are lazy so
that ``import cnnlab.serve`` costs nothing without the extras.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "export_onnx", "load_onnx", "open_model", "serve"]

_HOMES = {"create_app": "app", "export_onnx": "export", "load_onnx": "onnx_model", "open_model": "engine",
          "serve": "server"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"cnnlab.serve.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'cnnlab.serve' has no attribute {name!r}")
