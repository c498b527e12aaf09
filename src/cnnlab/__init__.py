"""cnnlab: convolutional neural networks on images, built on PyTorch."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from cnnlab.errors import CnnlabError

try:
    __version__ = version("cnnlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["CnnlabError", "__version__"]
