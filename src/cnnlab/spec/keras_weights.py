"""Move weights between Keras layers and a SpecModel.

Keras keeps a Conv2D kernel as (kH, kW, in, out), a Conv2DTranspose kernel as
(kH, kW, out, in), a Dense kernel as (in, out); cnnlab keeps torch's layouts
(out, in, kH, kW), (in, out, kH, kW) and (out, in). Because Flatten orders
values channels-last like Keras, a Dense kernel after a Flatten needs no
reordering beyond the transpose. Each layer type (:mod:`cnnlab.spec.layers`)
names its tensors in Keras's ``get_weights()`` order and maps a Keras array
onto them (``LayerType.weights``, ``LayerType.from_keras_weight``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from cnnlab.spec.errors import SpecError
from cnnlab.spec.layers import TYPES


def keras_to_torch(layer_type: str, name: str, array: Any) -> torch.Tensor:
    """One Keras weight array as the cnnlab tensor ``name`` of a ``layer_type`` layer."""
    tensor = torch.as_tensor(np.asarray(array, dtype=np.float32))
    known = TYPES.get(layer_type)
    return known.from_keras_weight(name, tensor) if known is not None else tensor


def set_keras_weights(model: Any, layer: str, arrays: Sequence[Any]) -> None:
    """Load ``arrays`` (Keras's ``layer.get_weights()`` order) into ``model.layers[layer]``."""
    entry = next((e for e in model.spec["layers"] if e.get("name") == layer), None)
    if entry is None or layer not in model.layers:
        raise SpecError(f"no layer named {layer!r}", where="set_keras_weights", fix=f"use one of: {', '.join(model.layers)}")
    module = model.layers[layer]
    names = [n for n in TYPES[entry["type"]].weights if getattr(module, n, None) is not None]
    if len(arrays) != len(names):
        raise SpecError(
            f"{entry['type']} layer {layer!r} holds {len(names)} weights ({', '.join(names) or 'none'}), got {len(arrays)}",
            where="set_keras_weights",
            fix="pass the list Keras's layer.get_weights() returns",
        )
    with torch.no_grad():
        for name, array in zip(names, arrays):
            target = getattr(module, name)
            value = keras_to_torch(entry["type"], name, array)
            if tuple(value.shape) != tuple(target.shape):
                raise SpecError(
                    f"{entry['type']} layer {layer!r}: Keras weight for {name} has shape {tuple(np.shape(array))}, which maps to {tuple(value.shape)}, not {tuple(target.shape)}",
                    where="set_keras_weights",
                    fix="check that the Keras layer has the same configuration",
                )
            target.copy_(value)
