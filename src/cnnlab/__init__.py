"""cnnlab: convolutional neural networks on images, built on PyTorch."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from cnnlab.errors import CnnlabError

try:
    __version__ = version("cnnlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["CnnlabError", "__version__", "fit", "load"]

# Heavy parts load on first use, so `import cnnlab` stays light (no torch).
_LAZY = {"fit": "cnnlab.train.api", "load": "cnnlab.inference"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
