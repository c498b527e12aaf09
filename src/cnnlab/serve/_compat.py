"""Where the loaded-model API lives: ``cnnlab.inference`` (issue 12), else its old home in ``cnnlab.train``."""

from __future__ import annotations

try:  # pragma: no cover - whichever exists
    from cnnlab.inference import LoadedModel, load
except ImportError:  # pragma: no cover
    from cnnlab.train.api import LoadedModel, load

__all__ = ["LoadedModel", "load"]
