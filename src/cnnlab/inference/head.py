"""Find a model's output activation, and train on the logits underneath it.

Keras models end in ``Dense(K, activation='softmax')`` (or sigmoid). Training
on probabilities loses precision (``log(0)``), so while training the trainer
makes the final softmax / sigmoid module return its input: the model then
outputs logits and the loss uses ``log_softmax`` / ``BCEWithLogits``. Outside
training the model is untouched and outputs probabilities again.

The final activation is found by running the model once and checking which
``nn.Softmax`` / ``nn.Sigmoid`` module produced the very tensor the model
returned; an activation inside the network (a squeeze-excite gate) is never
taken for the output one. Modules may also say it themselves with an
``output_activation`` attribute naming a submodule.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass
class OutputHead:
    """``activation``: 'softmax', 'sigmoid' or 'linear'; ``module``: the module applying it, if any."""

    activation: str
    module: nn.Module | None = None
    units: int = 0

    @contextlib.contextmanager
    def logits(self) -> Iterator[None]:
        """Inside this block the model returns the activation's input (the logits)."""
        if self.module is None:
            yield
            return
        # Shadow the module's forward with an identity (an instance attribute wins over the
        # class's method): the softmax is then not computed at all, where a forward hook
        # returning the input would compute it and throw it away on every step.
        # Re-entrant: an inner block (evaluate inside fit) leaves the outer one's shadow.
        module = self.module
        if "forward" in vars(module):
            yield
            return
        module.forward = _identity  # type: ignore[method-assign]
        try:
            yield
        finally:
            del module.forward

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """Model outputs (as the model returns them) -> probabilities; identity for regression."""
        if self.module is not None or self.activation == "linear":
            return outputs
        return outputs.softmax(-1) if self.activation == "softmax" else outputs.sigmoid()

    def for_task(self, task: str) -> OutputHead:
        """A linear head of a classifier gets its activation applied outside the model."""
        if self.module is None and self.activation == "linear" and task != "regression":
            return OutputHead("sigmoid" if self.units == 1 else "softmax", None, self.units)
        return self


_KINDS = ((nn.Softmax, "softmax"), (nn.Sigmoid, "sigmoid"))


def _identity(x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
    return x


@torch.no_grad()
def find_output_head(model: nn.Module, example: torch.Tensor) -> OutputHead:
    """Run ``model`` once on ``example`` (a batch, NCHW) in eval mode and find its output activation."""
    candidates = {id(m): (m, kind) for m in model.modules() for cls, kind in _KINDS if isinstance(m, cls)}
    seen: dict[int, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, args, out: seen.__setitem__(id(mod), out))
             for m, _ in candidates.values()]
    was_training = model.training
    model.eval()
    try:
        output = model(example)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    units = int(output[0].numel()) if output.dim() > 0 else 1
    for key, tensor in seen.items():
        if tensor is output:
            module, kind = candidates[key]
            return OutputHead(kind, module, units)
    return OutputHead("linear", None, units)


def squeeze_single_unit(outputs: np.ndarray) -> np.ndarray:
    """Outputs (N, 1) of one sigmoid unit or one regression value -> (N,); other shapes unchanged."""
    return outputs[:, 0] if outputs.ndim == 2 and outputs.shape[1] == 1 else outputs


def labels_of(outputs: np.ndarray, task: str, classes: Sequence[str] | None) -> list[Any]:
    """What ``predict_classes`` returns, from ``predict``'s outputs (the same rule for every engine).

    Classification: ``classes[argmax_k p_k]``; one sigmoid unit (outputs (N,)):
    ``classes[p > 0.5]``; without class names the indices as strings.
    Regression: the values as floats.
    """
    outputs = np.asarray(outputs)
    if task == "regression":
        return [float(v) for v in outputs.reshape(len(outputs), -1)[:, 0]]
    index = (outputs > 0.5).astype(int) if outputs.ndim == 1 else outputs.argmax(-1)
    names = list(classes) if classes else [str(i) for i in range(int(index.max(initial=0)) + 1)]
    return [names[int(i)] for i in index]
