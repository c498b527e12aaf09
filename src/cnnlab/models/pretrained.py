"""Load a torchvision-format state dict onto a zoo model, tensor by tensor, by name.

The file is a local ``.safetensors`` or a ``.pth`` / ``.pt`` read with
``torch.load(weights_only=True)`` (never unpickled otherwise). Each family
module declares how torchvision's key names map onto ours
(:class:`~cnnlab.models.registry.TorchvisionMap`); a state dict saved from a
cnnlab model of the same name loads as is.

Rules: every tensor of the file must land on a tensor of the same shape, and
every tensor of the model must be filled, except

- the top (``head.*``) and auxiliary classifiers: when the model has none
  (``include_top=False``, no ``aux_logits``) or a different number of classes,
  the file's are skipped and the model keeps its fresh ones (transfer learning);
- tensors torchvision has no counterpart for that are exact at zero (the
  Keras-style ResNet's conv biases before batch norm), set to zero;
- ``num_batches_tracked`` counters, which older checkpoints lack.

Anything else raises a CnnlabError listing the missing, unexpected and
mis-shaped keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.registry import TorchvisionMap, info

_SHOWN = 8  # keys listed per kind in an error message


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did, key by key (our names)."""

    loaded: list[str] = field(default_factory=list)
    zero_filled: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)  # model tensors kept as initialised (new top)
    skipped: list[str] = field(default_factory=list)  # file tensors not used (file's names)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or ``.pth`` / ``.pt`` state dict, on the CPU.

    A checkpoint holding the state dict under ``state_dict`` or ``model`` is
    unwrapped, and a ``module.`` prefix (DataParallel / DDP) is removed.
    """
    file = Path(path)
    if not file.is_file():
        raise CnnlabError(f"no weights file {str(file)!r}", where="weights", fix="check the path")
    if file.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(file), device="cpu")
        except (SafetensorError, OSError, ValueError) as error:
            raise CnnlabError(
                f"cannot read safetensors: {error}", where=str(file), fix="pass an intact .safetensors file"
            ) from None
    else:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:  # unpickling refused or corrupt: many exception types
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CnnlabError(
                f"cannot read it as a PyTorch state dict ({first})",
                where=str(file),
                fix="pass a state dict saved with torch.save(model.state_dict(), path) or a .safetensors file",
            ) from None
    if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
                break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CnnlabError(
            "the file does not hold a mapping of names to tensors",
            where=str(file),
            fix="save the weights with torch.save(model.state_dict(), path)",
        )
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state


def _listing(kind: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN]) + (f" (and {len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else "")
    return f"{len(keys)} {kind}: {shown}"


def _is_top(key: str) -> bool:
    return key.startswith(("head.", "aux1.", "aux2."))


def load_pretrained(model: nn.Module, path: str | os.PathLike[str]) -> LoadReport:
    """Copy the tensors of the state dict at ``path`` into ``model`` (made by ``create``).

    Returns a :class:`LoadReport`; raises CnnlabError naming every key that does
    not fit (see the module's rules).
    """
    state = read_state_dict(path)
    updates, report = match_state_dict(model, state, source=str(path))
    ours = model.state_dict()
    with torch.no_grad():
        for target, tensor in updates.items():
            ours[target].copy_(tensor)
        for target in report.zero_filled:
            ours[target].zero_()
    return report


def match_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], *, source: str = "weights"
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Pair each tensor of ``state`` with ``model``'s by name and shape, changing nothing.

    Returns ``{our key: tensor}`` and the report; raises CnnlabError listing the
    keys that do not fit. Works on meta-device models (no memory needed).
    """
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or "name" not in config:
        raise CnnlabError(
            "the model was not made by cnnlab.models.create", where="model", fix="build it with create(name, ...)"
        )
    name = config["name"]
    ours = model.state_dict()
    mapping = info(name).torchvision
    if set(state) <= set(ours):
        mapping = TorchvisionMap(lambda key: key)  # saved from a cnnlab model
    elif mapping is None:
        raise CnnlabError(
            f"{name} has no torchvision counterpart to load weights from",
            where=source,
            fix="use weights saved from a cnnlab model of the same name, or a model with torchvision weights "
            "(AlexNet, VGG, GoogLeNet, ResNet-18..152, DenseNet)",
        )
    report = LoadReport()
    unexpected: list[str] = []
    mismatched: list[str] = []
    filled: set[str] = set()
    updates: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        target = mapping.rename(key)
        if target not in ours:
            if _is_top(target) or mapping.optional(key):
                report.skipped.append(key)
            else:
                unexpected.append(key)
            continue
        if tuple(ours[target].shape) != tuple(tensor.shape):
            if _is_top(target):
                report.skipped.append(key)  # a top for another number of classes
            else:
                mismatched.append(f"{key} {tuple(tensor.shape)} -> {target} {tuple(ours[target].shape)}")
            continue
        updates[target] = tensor
        filled.add(target)
    missing: list[str] = []
    for target in ours:
        if target in filled:
            continue
        if target.endswith("num_batches_tracked"):
            continue
        if mapping.zero_fill(target):
            report.zero_filled.append(target)
        elif _is_top(target):
            report.fresh.append(target)
        else:
            missing.append(target)
    if unexpected or missing or mismatched:
        problems = [
            _listing(kind, keys)
            for kind, keys in (
                ("unexpected keys in the file", unexpected),
                (f"keys of {name} not in the file", missing),
                ("shape mismatches", mismatched),
            )
            if keys
        ]
        raise CnnlabError(
            f"the weights do not fit {name}: " + "; ".join(problems),
            where=source,
            fix=f"pass a torchvision {name} state dict (same depth; input channels as the file's first conv)",
        )
    report.loaded = sorted(filled)
    return updates, report
