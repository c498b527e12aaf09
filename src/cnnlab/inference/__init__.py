"""The loaded model and what uses it: predict, evaluate, test-time augmentation.

What explain, report, export and serve consume; it depends on models, spec
and data, never on the trainer.
"""

from __future__ import annotations

from cnnlab.inference.model import LoadedModel, load

__all__ = ["LoadedModel", "load"]
