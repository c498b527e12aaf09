"""cnnlab.spec: models written as Keras-style YAML / JSON specs, built as PyTorch modules.

- :func:`load_spec` reads a file (errors name file and line);
- :func:`build` checks a spec completely, then returns a :class:`SpecModel`
  (NCHW tensors in; ``.spec``, ``.input_shape``);
- :func:`summary` gives Keras's table and counts for a SpecModel, a spec or any module;
- :func:`regularization_loss` is the sum of the declared l1 / l2 penalties;
- :func:`set_keras_weights` loads a Keras layer's ``get_weights()`` into a built layer.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.nn.regularizers import penalty as _penalty
from cnnlab.spec.build import SpecModel, build, to_snake_case
from cnnlab.spec.errors import SpecError
from cnnlab.spec.keras_weights import keras_to_torch, set_keras_weights
from cnnlab.spec.layers import TYPES
from cnnlab.spec.load import load_spec
from cnnlab.spec.summary import LayerRow, Summary, summary

LAYER_TYPES: tuple[str, ...] = ("Input", *TYPES)


def regularization_loss(model: nn.Module) -> torch.Tensor:
    """Sum of the kernel / bias (gamma, beta, alpha) penalties the layers declared; 0 when none.

    Keras ``l2(0.01)`` contributes ``0.01 * sum(w**2)``. The trainer adds this to the loss.
    """
    return _penalty(model)


__all__ = ["LAYER_TYPES", "LayerRow", "SpecError", "SpecModel", "Summary", "build", "keras_to_torch", "load_spec", "regularization_loss", "set_keras_weights", "summary", "to_snake_case"]
