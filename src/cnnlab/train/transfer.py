"""Transfer learning: a pretrained backbone, a new head, frozen layers, fine-tuning.

The lecture notes' recipe (VGG16 for cats vs dogs from a few hundred images) in
three steps, each of which users of Keras, fastai and timm expect:

1. **Weights from a local file** (:func:`read_pretrained`): a cnnlab bundle or run
   folder (its backbone is reused), a torchvision-format state dict (``.pth``
   read with ``weights_only=True``, or ``.safetensors``) for a zoo model, or a
   Keras ``.keras`` / ``.h5`` model file (:mod:`cnnlab.spec.keras_model`).
2. **A model for the new data** (:func:`build_transfer_model`): the same
   architecture at the data's input size and channels, with the head rebuilt
   for the data's classes (one output for regression). A 1-channel set on a
   3-channel backbone gets the first convolution's kernels summed over the input
   channels, as timm's ``adapt_input_conv``: a grey image g fed as (g, g, g)
   gives ``sum_c w_c * g = (sum_c w_c) * g``, so the summed kernel on g computes
   exactly what the pretrained net computed on the grey image in colour.
3. **Freezing** (:func:`freeze_plan`, :func:`apply_freeze`): ``features`` (the
   whole backbone), ``none``, a number of leading blocks, or layer names / glob
   patterns as ``cnnlab summary`` names them. A frozen parameter gets
   ``requires_grad=False`` and stays out of the optimiser (so weight decay and
   momentum cannot move it either); a frozen batch-norm layer runs in inference
   mode, its moving mean and variance untouched, even after ``model.train()``
   (Keras's rule for ``trainable = False``; ``train_bn=True`` keeps frozen parts'
   batch norms training, as fastai's default). :class:`Unfreeze` lifts the freeze
   after ``freeze_epochs`` epochs (fastai's ``fine_tune``), adding the parameters
   to the optimiser at the backbone's rate; a resumed run re-applies it before the
   optimiser state is loaded, so a run killed in either phase resumes exactly.

Discriminative rates (:func:`param_groups`): the backbone trains at
``backbone_lr_mult`` x the head's rate.
"""

from __future__ import annotations

import fnmatch
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.train.callbacks import Callback
from cnnlab.train.config import is_spec_file

_FROZEN_BN = "_cnnlab_frozen_bn"
_BN_HOOK = "_cnnlab_frozen_bn_hook"
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


# ------------------------------------------------------------------------- sources


@dataclass
class Pretrained:
    """Weights read from a local file, with the architecture when the file says it.

    ``kind``: 'bundle' (a cnnlab bundle or run folder), 'state_dict' (torchvision
    format or saved from a cnnlab model) or 'keras'. ``architecture``: model.json's
    entry ({'kind': 'zoo', 'config': ...} / {'kind': 'spec', 'spec': ...}) for
    bundles and Keras files, None for a bare state dict. ``tensors``: by our names
    (bundle, Keras) or the file's (state dict).
    """

    kind: str
    path: Path
    tensors: dict[str, torch.Tensor]
    architecture: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        arch = self.architecture or {}
        if arch.get("kind") == "zoo":
            return str(arch["config"].get("name"))
        if arch.get("kind") == "spec":
            return str((arch.get("spec") or {}).get("name") or "spec")
        return self.path.name


def read_pretrained(path: str | os.PathLike[str]) -> Pretrained:
    """Read a bundle / run folder, a state dict (.pth / .pt / .safetensors) or a Keras file (.keras / .h5)."""
    file = Path(path)
    if not file.exists():
        raise CnnlabError("no such pretrained weights file or bundle", where=str(file),
                          fix="give a run folder, a bundle, a .pth / .safetensors state dict or a .keras / .h5 file")
    if file.is_dir():
        from cnnlab.inference.bundle import load_weights, read_meta

        meta = read_meta(file)
        return Pretrained("bundle", file, dict(load_weights(file, meta)), dict(meta.get("architecture") or {}), meta)
    suffix = file.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        from cnnlab.spec.keras_model import read_keras_model

        imported = read_keras_model(file)
        return Pretrained("keras", file, imported.tensors, {"kind": "spec", "spec": imported.spec},
                          {"keras": imported.info})
    if suffix in STATE_DICT_SUFFIXES:
        from cnnlab.models.pretrained import read_state_dict

        return Pretrained("state_dict", file, read_state_dict(file))
    raise CnnlabError(f"cannot tell what {file.suffix or 'a file without a suffix'} holds", where=str(file),
                      fix="give a bundle folder, a .pth / .pt / .safetensors state dict, or a .keras / .h5 Keras model")


# ------------------------------------------------------------------ the new model


@dataclass
class TransferModel:
    """What :func:`build_transfer_model` made: the module, model.json's architecture, words, what it loaded."""

    module: nn.Module
    architecture: dict[str, Any]
    described: str
    loaded: int
    fresh: list[str]
    adapted: list[str]


def adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A first-layer kernel (out, C, kh, kw) for ``channels`` input channels (timm's ``adapt_input_conv``).

    One channel: the kernels summed over C (exact for a grey image given as C equal
    channels). Otherwise the C kernels repeated cyclically and scaled by C / channels,
    which keeps the response's scale (exactly, on a constant image, when channels is a
    multiple of C).
    """
    have = weight.shape[1]
    if channels == have:
        return weight
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeat = math.ceil(channels / have)
    return weight.repeat(1, repeat, 1, 1)[:, :channels] * (have / channels)


def _first_conv_key(state: Mapping[str, torch.Tensor], channels_in: int) -> str | None:
    for key, tensor in state.items():
        if key.endswith("weight") and tensor.dim() == 4:
            return key if tensor.shape[1] == channels_in else None
    return None


def _copy_matching(module: nn.Module, tensors: Mapping[str, torch.Tensor], *, skip: Sequence[str], source: str,
                   channels: int) -> tuple[int, list[str], list[str]]:
    """Copy ``tensors`` into ``module`` by name, skipping keys under ``skip`` (the head); strict otherwise."""
    ours = module.state_dict()
    first = _first_conv_key(ours, channels)
    missing, mismatched, unexpected, adapted = [], [], [], []
    updates: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        if any(key.startswith(prefix) for prefix in skip):
            continue
        if key not in ours:
            unexpected.append(key)
            continue
        if key == first and tensor.dim() == 4 and tensor.shape[1] != ours[key].shape[1] \
                and tensor.shape[0] == ours[key].shape[0] and tensor.shape[2:] == ours[key].shape[2:]:
            tensor = adapt_input_channels(tensor, int(ours[key].shape[1]))
            adapted.append(key)
        if tuple(tensor.shape) != tuple(ours[key].shape):
            mismatched.append(f"{key} {tuple(tensor.shape)} -> {tuple(ours[key].shape)}")
            continue
        updates[key] = tensor
    fresh = []
    for key in ours:
        if key in updates:
            continue
        if any(key.startswith(prefix) for prefix in skip):
            fresh.append(key)
        elif not key.endswith("num_batches_tracked"):
            missing.append(key)
    if missing or mismatched or unexpected:
        parts = [f"{len(keys)} {what}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
                 for what, keys in (("keys missing from the file", missing), ("shape mismatches", mismatched),
                                    ("unexpected keys in the file", unexpected)) if keys]
        raise CnnlabError("the pretrained weights do not fit the model: " + "; ".join(parts), where=source,
                          fix="give weights of the same architecture (a bundle trained with this --model), "
                              "and images of a size the backbone accepts")
    with torch.no_grad():
        for key, tensor in updates.items():
            ours[key].copy_(tensor.to(ours[key].dtype))
    return len(updates), fresh, adapted


def output_layer(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The layer of a spec that makes the predictions: the last Dense or Conv2D (the one a new head replaces)."""
    layers = spec.get("layers") or []
    for layer in reversed(layers):
        if layer.get("type") in ("Dense", "Conv2D"):
            return layer
    raise CnnlabError("the model has no Dense or Conv2D layer to rebuild as the new head", where="pretrained model",
                      fix="use a model that ends in a Dense (or a 1x1 Conv2D) layer")


def _has_flatten_before(spec: Mapping[str, Any], head_name: str) -> bool:
    for layer in spec.get("layers") or []:
        if layer.get("name") == head_name:
            return False
        if layer.get("type") in ("Flatten", "Reshape"):
            return True
    return False


def transfer_spec(spec: Mapping[str, Any], *, input_shape: Sequence[int], outputs: int, activation: str) -> dict[str, Any]:
    """``spec`` at the data's channels (and size, unless a Flatten fixes it), its output layer for ``outputs``.

    The output layer (:func:`output_layer`) gets ``outputs`` units / filters and, when
    it is the last layer, the task's activation (softmax, sigmoid or linear).
    """
    import copy

    new = copy.deepcopy(dict(spec))
    head = output_layer(new)
    h, w, c = (int(v) for v in input_shape)
    old = list(new.get("input_shape") or next((layer.get("shape") for layer in new["layers"] if layer.get("type") == "Input"), None) or [h, w, c])
    size = old[:2] if _has_flatten_before(new, head.get("name", "")) else [h, w]  # a Flatten fixes the size
    shape = [*size, c]
    if new.get("input_shape") is not None:
        new["input_shape"] = shape
    for layer in new["layers"]:
        if layer.get("type") == "Input":
            layer["shape"] = shape
    head["units" if head["type"] == "Dense" else "filters"] = int(outputs)
    if head is new["layers"][-1]:
        head["activation"] = activation
    return new


def build_transfer_model(pretrained: Pretrained, model: Any, options: Mapping[str, Any], *, input_shape: Sequence[int],
                         outputs: int, activation: str, seed: int) -> TransferModel:
    """The architecture of ``pretrained`` (or the zoo ``model`` for a bare state dict) for the new data.

    Everything but the head is copied from the file (the first convolution adapted
    to the data's channels); the head is fresh, sized to ``outputs``. Raises a
    CnnlabError naming the file and the keys that do not fit.
    """
    source = str(pretrained.path)
    channels = int(input_shape[2])
    arch = pretrained.architecture
    if pretrained.kind == "state_dict":
        return _from_state_dict(pretrained, model, options, input_shape=input_shape, outputs=outputs, seed=seed)
    assert arch is not None
    if model is not None:
        given = model if isinstance(model, str) else "an inline spec"
        if not (arch.get("kind") == "zoo" and arch["config"].get("name") == given):
            raise CnnlabError(f"the pretrained {pretrained.kind} holds a {pretrained.name} model, not {given}",
                              where=source,
                              fix="drop --model (the pretrained file's architecture is used), "
                                  f"or give weights of a {given}")
    if arch.get("kind") == "zoo":
        from cnnlab.models import create

        config = dict(arch["config"])
        config.update(num_classes=int(outputs), input_shape=[int(v) for v in input_shape], include_top=True)
        config.update(dict(options))
        torch.manual_seed(seed)
        module = create(**config)
        loaded, fresh, adapted = _copy_matching(module, pretrained.tensors, skip=("head.", "aux1.", "aux2."),
                                                source=source, channels=channels)
        new_arch = {"kind": "zoo", "config": dict(module.config)}
    elif arch.get("kind") == "spec":
        from cnnlab.spec import build

        spec = transfer_spec(arch["spec"], input_shape=input_shape, outputs=outputs, activation=activation)
        head = output_layer(spec)["name"]
        module = build(spec, seed=seed)
        loaded, fresh, adapted = _copy_matching(module, pretrained.tensors, skip=(f"layers.{head}.",), source=source,
                                                channels=channels)
        new_arch = {"kind": "spec", "spec": None}
    else:
        raise CnnlabError(f"the bundle's architecture kind {arch.get('kind')!r} cannot be rebuilt", where=source,
                          fix="give a bundle written by `cnnlab train`")
    return TransferModel(module, new_arch, f"{pretrained.name} pretrained from {pretrained.path.name}", loaded, fresh,
                         adapted)


def _from_state_dict(pretrained: Pretrained, model: Any, options: Mapping[str, Any], *, input_shape: Sequence[int],
                     outputs: int, seed: int) -> TransferModel:
    from cnnlab.models import create
    from cnnlab.models.pretrained import match_state_dict
    from cnnlab.models.registry import info

    source = str(pretrained.path)
    if not isinstance(model, str) or is_spec_file(model):
        raise CnnlabError("a state dict holds no architecture: say which zoo model it is for", where=source,
                          fix="add --model NAME (resnet18, vgg16, ...), or give a bundle / Keras file")
    torch.manual_seed(seed)
    module = create(model, num_classes=int(outputs), input_shape=[int(v) for v in input_shape], **dict(options))
    ours = module.state_dict()
    state = dict(pretrained.tensors)
    mapping = info(model).torchvision
    rename = (lambda key: key) if set(state) <= set(ours) or mapping is None else mapping.rename
    first = _first_conv_key(ours, int(input_shape[2]))
    adapted = []
    for key, tensor in list(state.items()):
        target = rename(key)
        if target == first and target in ours and tensor.dim() == 4 and tensor.shape[1] != ours[target].shape[1]:
            state[key] = adapt_input_channels(tensor, int(ours[target].shape[1]))
            adapted.append(target)
    updates, report = match_state_dict(module, state, source=source)
    heads = ("head.", "aux1.", "aux2.")
    with torch.no_grad():
        for target, tensor in updates.items():
            if not target.startswith(heads):  # the head is always rebuilt for the new data
                ours[target].copy_(tensor)
        for target in report.zero_filled:
            ours[target].zero_()
    fresh = [k for k in ours if k.startswith(heads)]
    loaded = sum(1 for k in updates if not k.startswith(heads))
    return TransferModel(module, {"kind": "zoo", "config": dict(module.config)},
                         f"{model} pretrained from {pretrained.path.name}", loaded, fresh, adapted)


# ------------------------------------------------------------------------ freezing


def layer_entries(model: nn.Module) -> list[tuple[str, nn.Module, bool]]:
    """(name, module, recurse) per row of ``cnnlab summary``: spec layer names, or the zoo's qualified names."""
    from cnnlab.spec.build import SpecModel

    if isinstance(model, SpecModel):
        return [(name, module, True) for name, module in model.layers.items()]
    from cnnlab.spec.summary import _rows_of

    return _rows_of(model)


def backbone_and_head(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], list[tuple[str, nn.Module]]]:
    """The backbone's top-level blocks and the head's, in order.

    Zoo models: the children of ``features`` and ``head``. Spec models: every layer
    before the output layer (:func:`output_layer`), and the output layer with what follows.
    """
    from cnnlab.spec.build import SpecModel

    if isinstance(model, SpecModel):
        head_name = output_layer(model.spec)["name"]
        names = list(model.layers)
        cut = names.index(head_name)
        return ([(n, model.layers[n]) for n in names[:cut]], [(n, model.layers[n]) for n in names[cut:]])
    features = getattr(model, "features", None)
    head = getattr(model, "head", None)
    if not isinstance(features, nn.Module):
        raise CnnlabError(f"{type(model).__name__} has no 'features' backbone to freeze", where="transfer.freeze",
                          fix="freeze layers by name instead (see `cnnlab summary`)")
    blocks = [(f"features.{n}", m) for n, m in features.named_children()] or [("features", features)]
    heads = [(f"head.{n}", m) for n, m in head.named_children()] if isinstance(head, nn.Module) else []
    return blocks, heads or ([("head", head)] if isinstance(head, nn.Module) else [])


@dataclass
class FreezePlan:
    """The modules a ``freeze`` setting names: (name, module, recurse)."""

    setting: Any
    modules: list[tuple[str, nn.Module, bool]]

    def parameters(self) -> list[nn.Parameter]:
        seen: dict[int, nn.Parameter] = {}
        for _, module, recurse in self.modules:
            for p in module.parameters(recurse=recurse):
                seen.setdefault(id(p), p)
        return list(seen.values())

    def batchnorms(self) -> list[nn.Module]:
        found: dict[int, nn.Module] = {}
        for _, module, recurse in self.modules:
            for m in (module.modules() if recurse else [module]):
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    found.setdefault(id(m), m)
        return list(found.values())

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.modules]

    def __bool__(self) -> bool:
        return bool(self.modules)


def freeze_plan(model: nn.Module, freeze: Any) -> FreezePlan:
    """What ``freeze`` names: 'features' / 'backbone', 'none' / None, an int N (leading backbone blocks),
    or a name / glob pattern / list of them (a pattern ``P`` also takes everything under ``P.``)."""
    if freeze is None or freeze is False or (isinstance(freeze, str) and freeze.lower() in ("none", "")):
        return FreezePlan(freeze, [])
    if isinstance(freeze, str) and freeze.lower() in ("features", "backbone"):
        blocks, _ = backbone_and_head(model)
        return FreezePlan(freeze, [(n, m, True) for n, m in blocks])
    if isinstance(freeze, int) and not isinstance(freeze, bool) or (isinstance(freeze, str) and freeze.isdigit()):
        count = int(freeze)
        blocks, _ = backbone_and_head(model)
        if count < 0 or count > len(blocks):
            raise CnnlabError(f"cannot freeze {count} leading blocks: the backbone has {len(blocks)}",
                              where="transfer.freeze", fix=f"give 0..{len(blocks)} ({', '.join(n for n, _ in blocks[:8])} ...)")
        return FreezePlan(freeze, [(n, m, True) for n, m in blocks[:count]])
    patterns = [freeze] if isinstance(freeze, str) else list(freeze) if isinstance(freeze, (list, tuple)) else None
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise CnnlabError(f"freeze must be 'features', 'none', a number of blocks or layer names, got {freeze!r}",
                          where="transfer.freeze", fix="write e.g. freeze: features, freeze: 3 or freeze: [conv2d, 'layer1.*']")
    entries = layer_entries(model)
    chosen: dict[str, tuple[str, nn.Module, bool]] = {}
    for pattern in patterns:
        hits = [e for e in entries if fnmatch.fnmatchcase(e[0], pattern) or fnmatch.fnmatchcase(e[0], pattern + ".*")]
        if not hits:
            import difflib

            close = difflib.get_close_matches(pattern, [e[0] for e in entries], n=3)
            raise CnnlabError(f"no layer is named {pattern!r}", where="transfer.freeze",
                              fix=(f"did you mean {', '.join(close)}? " if close else "")
                              + "use the names `cnnlab summary` prints (glob patterns such as 'features.layer1*' work)")
        for entry in hits:
            chosen.setdefault(entry[0], entry)
    return FreezePlan(freeze, list(chosen.values()))


def _keep_inference_mode(module: nn.Module, args: Any) -> None:
    """Forward pre-hook: a frozen batch norm normalises with its moving statistics and never updates them."""
    if getattr(module, _FROZEN_BN, False):
        module.training = False


def set_batchnorm_frozen(module: nn.Module, frozen: bool, *, training: bool | None = None) -> None:
    """Freeze / unfreeze one batch-norm layer's statistics.

    A flag plus a forward pre-hook (registered once) rather than ``module.eval()``:
    ``model.train()`` sets ``training`` back on every module, the hook turns it off
    again on the frozen ones just before each forward, whoever called ``train()``.
    """
    if not hasattr(module, _BN_HOOK):
        setattr(module, _BN_HOOK, module.register_forward_pre_hook(_keep_inference_mode))
    setattr(module, _FROZEN_BN, frozen)
    if hasattr(module, "trainable"):  # cnnlab.nn.BatchNorm: inference mode when not trainable, as Keras
        module.trainable = not frozen
    if frozen:
        module.training = False
    elif training is not None:
        module.training = training


def apply_freeze(plan: FreezePlan, *, train_bn: bool = False) -> list[nn.Parameter]:
    """Freeze what ``plan`` names; returns the parameters frozen (batch norm's too, unless ``train_bn``)."""
    batchnorm_params = {id(p) for bn in plan.batchnorms() for p in bn.parameters(recurse=False)} if train_bn else set()
    frozen = [p for p in plan.parameters() if id(p) not in batchnorm_params]
    for p in frozen:
        p.requires_grad_(False)
    if not train_bn:
        for bn in plan.batchnorms():
            set_batchnorm_frozen(bn, True)
    return frozen


def release_freeze(plan: FreezePlan, *, training: bool = True) -> list[nn.Parameter]:
    """Undo :func:`apply_freeze`: every parameter trainable, batch norms back to ``training``."""
    params = [p for p in plan.parameters() if not p.requires_grad]
    for p in params:
        p.requires_grad_(True)
    for bn in plan.batchnorms():
        set_batchnorm_frozen(bn, False, training=training)
    return params


def param_groups(model: nn.Module, *, backbone_lr_mult: float = 1.0, lr: float) -> list[dict[str, Any]]:
    """The optimiser's groups: the head at ``lr``, the (trainable) backbone at ``lr * backbone_lr_mult``.

    Frozen parameters (``requires_grad=False``) are in no group. Each group says
    which it is (``name``) and its ``lr_mult``, which the unfreeze step reads.
    """
    if backbone_lr_mult == 1.0:
        params = [p for p in model.parameters() if p.requires_grad]
        return [{"params": params, "lr": lr, "name": "all", "lr_mult": 1.0}] if params else []
    blocks, _ = backbone_and_head(model)
    backbone = {id(p) for _, m in blocks for p in m.parameters()}
    head = [p for p in model.parameters() if p.requires_grad and id(p) not in backbone]
    body = [p for p in model.parameters() if p.requires_grad and id(p) in backbone]
    groups = []
    if head:
        groups.append({"params": head, "lr": lr, "name": "head", "lr_mult": 1.0})
    if body:
        groups.append({"params": body, "lr": lr * backbone_lr_mult, "name": "backbone", "lr_mult": backbone_lr_mult})
    return groups


_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")


def add_unfrozen_group(optimizer: torch.optim.Optimizer, schedule: Any, params: Sequence[nn.Parameter], *,
                       lr_mult: float) -> dict[str, Any]:
    """Add ``params`` to ``optimizer`` as a group at ``lr_mult`` x the first group's base rate.

    The new group copies the first group's settings (momentum, decay, betas) with
    every rate scaled by ``lr_mult / first group's lr_mult``; the schedule's per-group
    lists (base rates, plateau minima) grow with it, so it drives the new group as
    it drives the others from then on.
    """
    first = optimizer.param_groups[0]
    ratio = lr_mult / float(first.get("lr_mult", 1.0))
    group = {k: v for k, v in first.items() if k != "params"}
    for key in _LR_KEYS:
        if key in group and isinstance(group[key], (int, float)):
            group[key] = group[key] * ratio
    group.update(params=list(params), name="unfrozen", lr_mult=lr_mult)
    optimizer.add_param_group(group)
    scheduler = getattr(schedule, "scheduler", None)
    if scheduler is not None:
        for attr in ("base_lrs", "_last_lr"):
            values = getattr(scheduler, attr, None)
            if isinstance(values, list) and values:
                values.append(values[0] * ratio)
        min_lrs = getattr(scheduler, "min_lrs", None)
        if isinstance(min_lrs, list) and min_lrs:
            min_lrs.append(min_lrs[0])
    return optimizer.param_groups[-1]


class Unfreeze(Callback):
    """Lift the freeze after ``at_epoch`` epochs (fastai's ``fine_tune``): the head trains alone first.

    At the end of epoch ``at_epoch`` the frozen parameters become trainable and join
    the optimiser at ``backbone_lr_mult`` x the head's rate. Whether this happened
    follows from the epoch count, so :meth:`before_restore` re-applies it before a
    resumed run loads its optimiser state (a run killed in either phase resumes exactly).
    """

    def __init__(self, plan: FreezePlan, at_epoch: int, *, backbone_lr_mult: float = 1.0, train_bn: bool = False,
                 say: Any = None) -> None:
        self.plan, self.at_epoch, self.backbone_lr_mult, self.train_bn = plan, int(at_epoch), backbone_lr_mult, train_bn
        self.done = False
        self.say = say

    def unfreeze(self, trainer: Any) -> None:
        if self.done:
            return
        params = release_freeze(self.plan, training=trainer.model.training)
        if params:
            add_unfrozen_group(trainer.optimizer, trainer.schedule, params, lr_mult=self.backbone_lr_mult)
        self.done = True
        if self.say is not None:
            total = sum(p.numel() for p in params)
            self.say(f"unfroze {len(self.plan.modules)} layer(s), {total:,} parameters, "
                     f"at {self.backbone_lr_mult:g} x the head's learning rate")

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        if epoch + 1 >= self.at_epoch:
            self.unfreeze(trainer)

    def before_restore(self, trainer: Any, state: Mapping[str, Any]) -> None:
        if int(state["epoch"]) >= self.at_epoch:
            self.unfreeze(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"done": self.done, "at_epoch": self.at_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if bool(state.get("done")) != self.done:
            raise CnnlabError("the saved run and the resumed one disagree on the unfreeze point", where="transfer.freeze_epochs",
                              fix="resume with the run's own config.yaml (do not change transfer settings)")


def frozen_summary(model: nn.Module) -> str:
    """'trainable 650 / non-trainable 269,722 parameters' (Keras's split; batch-norm statistics are non-trainable)."""
    from cnnlab.nn.params import count_params

    count = count_params(model)
    return f"{count.trainable:,} trainable / {count.non_trainable:,} non-trainable parameters"



# --------------------------------------------------------------- Keras file -> bundle


def import_keras_bundle(path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                        classes: Sequence[str] | None = None, rescale: float | None = None) -> Path:
    """Write the Keras model at ``path`` as a cnnlab bundle in ``out`` (predicting what Keras predicts).

    ``classes``: the class names (default "0".."K-1"; a 1-unit sigmoid model gets two).
    ``rescale``: what a pixel byte is multiplied by before the network (default 1/255,
    the notes' ``rescale=1./255``). A model ending in a linear unit without ``classes``
    is taken as a regressor.
    """
    from cnnlab.data.loader import DEFAULT_SCALE
    from cnnlab.inference.bundle import save_bundle
    from cnnlab.inference.head import find_output_head
    from cnnlab.spec.keras_model import read_keras_model

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise CnnlabError("the bundle folder already exists and is not empty", where=str(out),
                          fix="give a new folder with -o")
    imported = read_keras_model(path)
    model = imported.build()
    h, w, c = (int(v) for v in model.input_shape)
    head = find_output_head(model, torch.zeros(1, c, h, w))
    task = "regression" if head.activation == "linear" and not classes else "classification"
    units = head.units
    if task == "classification":
        wanted = 2 if units == 1 else units
        names = list(classes) if classes else [str(i) for i in range(wanted)]
        if len(names) != wanted:
            raise CnnlabError(f"{len(names)} class names for a model with {wanted} classes", where="--classes",
                              fix=f"give {wanted} comma-separated names")
        head = head.for_task(task)
    else:
        names = None
    scale = DEFAULT_SCALE if rescale is None else float(rescale)
    meta = {"architecture": {"kind": "spec", "spec": model.spec}, "task": task, "classes": names,
            "input_shape": [h, w, c],
            "preprocessing": {"image_size": [h, w], "channels": c, "resize": "bilinear-stretch", "alpha": "white",
                              "scale": scale, "mean": None, "std": None},
            "output": {"activation": head.activation, "in_model": head.module is not None, "units": units},
            "metrics": {}, "imported_from": {"file": Path(path).name, **imported.info}}
    out.mkdir(parents=True, exist_ok=True)
    return save_bundle(out, model, meta)
