"""What every explanation method shares: the model and images as the network takes them, the
layer, the target and the score being explained, and a model state that is restored afterwards.

Any model is explained in eval mode, in float32, with autocast off, and with in-place
activations switched to out-of-place for the duration of the call (in-place ReLUs overwrite
the captured feature map and break backward hooks: pytorch-grad-cam PR#183). Every hook is
registered inside a ``try`` and removed in its ``finally`` (that library's leaks #88, #132):
after any call, successful or not, the model is exactly as it was.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CnnlabError

from cnnlab.inference.head import OutputHead, find_output_head


@dataclass
class Explanation:
    """What :func:`cnnlab.explain.explain` returns.

    ``maps``: float32 (N, H, W) in [0, 1] at the input's size (bilinear upsampling of
    ``raw``, its positive part divided by its maximum). ``raw``: float32 (N, h, w), the map
    before upsampling and scaling, at the layer's resolution (pixel methods: the input's).
    ``targets``: the class index explained per image (0 for a regression output).
    ``probabilities``: (N,) the model's probability of that class, None for regression.
    ``empty``: per image, True where the map has no positive value (``maps`` is then zeros
    and a warning said so). ``classes``: the model's class names when it has them.
    """

    maps: np.ndarray
    raw: np.ndarray
    targets: list[int]
    probabilities: np.ndarray | None
    layer: str
    method: str
    empty: list[bool] = field(default_factory=list)
    classes: list[str] | None = None
    scores: np.ndarray | None = None  # the explained score per image (logit, or the regression value)

    @property
    def target_names(self) -> list[str]:
        """The explained class per image, by name where the model has names."""
        return [self.classes[t] if self.classes and t < len(self.classes) else str(t) for t in self.targets]

    def __len__(self) -> int:
        return len(self.targets)


# ------------------------------------------------------------------------- the model


@dataclass
class Subject:
    """A model made ready to explain: the module, its output head, task and class names."""

    module: nn.Module
    head: OutputHead  # where the output activation is; what turns logits into probabilities
    task: str  # 'classification' | 'regression'
    classes: list[str] | None
    loaded: Any = None  # the LoadedModel, when one was given

    @property
    def binary(self) -> bool:
        """One sigmoid unit for two classes: class 1 scores +z, class 0 scores -z."""
        return self.task != "regression" and self.head.units == 1


def _is_loaded(model: Any) -> bool:
    return hasattr(model, "module") and hasattr(model, "prepare") and hasattr(model, "meta")


_HEADS: weakref.WeakKeyDictionary[nn.Module, OutputHead] = weakref.WeakKeyDictionary()


def subject_of(model: Any, x: torch.Tensor, module: nn.Module | None = None) -> Subject:
    """A LoadedModel or an nn.Module -> :class:`Subject` (the head found once per module).

    ``module``: the network to run instead of the model's own (its float32 copy)."""
    if _is_loaded(model):
        own, task, classes = model.module, model.task, model.classes
    elif isinstance(model, nn.Module):
        own, task, classes = model, None, getattr(model, "classes", None)
    else:
        raise CnnlabError(f"cannot explain a {type(model).__name__}", where="model",
                          fix="pass a loaded bundle (cnnlab.load(run)) or a torch.nn.Module")
    module = module if module is not None else own
    head = _HEADS.get(module)
    if head is None:
        with evaluating(module):
            try:
                head = find_output_head(module, x[:1])
            except RuntimeError as error:
                raise CnnlabError(f"the model cannot run on images of shape {tuple(x.shape[1:])} (NCHW): "
                                  f"{str(error).splitlines()[0]}", where="images",
                                  fix="give images of the size and channel count the model takes") from None
        _HEADS[module] = head
    if task is None:
        task = "regression" if head.activation == "linear" and head.units == 1 else "classification"
    return Subject(module, head.for_task(task), task, list(classes) if classes else None,
                   model if _is_loaded(model) else None)


def mine(hook: Any) -> Any:
    """A forward hook that acts only for the thread that registered it.

    A server may run the same module in other threads at the same time (predict requests):
    their forward passes must neither feed this explanation nor be changed by it.
    """
    owner = threading.get_ident()

    def wrapped(module: nn.Module, args: Any, out: Any) -> Any:
        return hook(module, args, out) if threading.get_ident() == owner else None

    return wrapped


class Scores(nn.Module):
    """The model's scores to explain, (N, K): logits (pre-softmax / pre-sigmoid) or regression values.

    Grad-CAM explains the class score y^c before the softmax (Selvaraju et al.): when the
    model applies its own softmax / sigmoid, the scores are that module's input, read by a
    forward hook (the model itself is not changed, so other threads can use it meanwhile).
    One sigmoid unit becomes two columns ``[-z, z]``, so class 0 and class 1 are both targets.
    """

    def __init__(self, subject: Subject) -> None:
        super().__init__()
        self.model = subject.module
        self.binary = subject.binary
        self.activation = subject.head.module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        box: dict[str, torch.Tensor] = {}
        handle = None
        if self.activation is not None:
            handle = self.activation.register_forward_hook(mine(lambda m, args, out: box.__setitem__("z", args[0])))
        try:
            out = self.model(x)
        finally:
            if handle is not None:
                handle.remove()
        z = box.get("z", out)
        z = z.reshape(z.shape[0], -1).float()
        return torch.cat([-z, z], 1) if self.binary else z


def probabilities_of(subject: Subject, scores: torch.Tensor, targets: torch.Tensor) -> np.ndarray | None:
    """Probability of each target from the :class:`Scores` output; None for regression."""
    if subject.task == "regression":
        return None
    if subject.binary:
        p = torch.sigmoid(scores)
    elif subject.head.activation == "sigmoid":
        p = torch.sigmoid(scores)
    else:
        p = torch.softmax(scores, 1)
    return p.gather(1, targets[:, None])[:, 0].detach().cpu().numpy().astype(np.float32)


# One explanation at a time: eval mode and the in-place flags are set on the shared module.
LOCK = threading.RLock()


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode, out-of-place activations, no autocast; modes and flags restored after."""
    with LOCK:
        modes = {m: m.training for m in module.modules()}
        inplace = [m for m in module.modules() if getattr(m, "inplace", False) is True]
        module.eval()
        for m in inplace:
            m.inplace = False  # type: ignore[assignment]
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(torch.autocast(device_type="cpu", enabled=False))
                if torch.cuda.is_available():
                    stack.enter_context(torch.autocast(device_type="cuda", enabled=False))
                yield
        finally:
            for m in inplace:
                m.inplace = True  # type: ignore[assignment]
            for m, mode in modes.items():
                m.training = mode


def float32(model: Any) -> nn.Module:
    """The network itself when it is float32, else a float32 copy (the explanation is always fp32)."""
    module = model.module if _is_loaded(model) else model
    if not isinstance(module, nn.Module):
        raise CnnlabError(f"cannot explain a {type(model).__name__}", where="model",
                          fix="pass a loaded bundle (cnnlab.load(run)) or a torch.nn.Module")
    if all(p.dtype == torch.float32 for p in module.parameters()) and all(
            b.dtype == torch.float32 for b in module.buffers() if b.is_floating_point()):
        return module
    return copy.deepcopy(module).float()


def device_of(module: nn.Module) -> torch.device:
    """The device of the module's first parameter (the CPU for a module without any)."""
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


# ------------------------------------------------------------------------- images


def as_input(model: Any, images: Any) -> torch.Tensor:
    """Images -> the network's input (N, C, H, W) float32.

    A float tensor is taken as the network's input ((C, H, W) is one image). With a loaded
    bundle anything its ``prepare`` takes works (paths, PIL images, uint8 arrays).
    """
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        x = images.detach()
        if x.dim() == 3:
            x = x[None]
        if x.dim() != 4:
            raise CnnlabError(f"images must be (N, C, H, W), got a tensor of shape {tuple(images.shape)}",
                              where="images", fix="pass a batch of images as the network takes them")
        return x.float()
    if _is_loaded(model):
        return model.prepare(images).float()
    raise CnnlabError(f"a torch.nn.Module needs images as a float tensor (N, C, H, W), got {type(images).__name__}",
                      where="images", fix="pass the network's input tensor, or load a bundle (cnnlab.load) to explain "
                                          "image files, PIL images or uint8 arrays")


# ------------------------------------------------------------------------- layers


def _is_spec(module: nn.Module) -> bool:
    return hasattr(module, "_plan") and isinstance(getattr(module, "layers", None), nn.ModuleDict)


def display_name(root: nn.Module, qualified: str) -> str:
    """A module's name as `cnnlab summary` prints it (a spec's own layers by their Keras names)."""
    if _is_spec(root) and qualified.startswith("layers."):
        return qualified[len("layers."):]
    return qualified


def _candidates(root: nn.Module) -> list[tuple[str, nn.Module]]:
    """(summary name, module) for every module that may be a layer, in definition order."""
    out = []
    for qualified, module in root.named_modules():
        if not qualified:
            continue
        if _is_spec(root) and (not qualified.startswith("layers.") or qualified.count(".") > 1):
            continue  # a spec's rows are its layers, not their insides
        out.append((display_name(root, qualified), module))
    return out


def trace_layers(root: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """Run ``root`` once (no grad, eval) and list (name, module, output shape) of every candidate
    layer in the order their calls finished: a container finishes after everything inside it."""
    seen: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    handles = []
    for name, module in _candidates(root):
        def hook(mod: nn.Module, args: Any, out: Any, _name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                seen.append((_name, mod, tuple(out.shape)))
        handles.append(module.register_forward_hook(mine(hook)))
    try:
        with torch.no_grad(), evaluating(root):
            root(x[:1])
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _feature_layers(trace: list[tuple[str, nn.Module, tuple[int, ...]]]) -> list[str]:
    names: list[str] = []
    for name, _, shape in trace:
        if len(shape) == 4 and name not in names:
            names.append(name)
    return names


def _listing(names: list[str], near: str | None = None) -> str:
    if len(names) <= 30:
        return ", ".join(names)
    close = difflib.get_close_matches(near, names, n=8, cutoff=0.3) if near else []
    shown = list(dict.fromkeys([*close, *names[:4], *names[-8:]]))
    return ", ".join(shown) + f" ({len(names)} in all; `cnnlab summary` prints every layer)"


def default_layer(root: nn.Module, x: torch.Tensor, any_size: bool = False) -> str:
    """The last convolutional feature map before the head.

    A zoo model's ``features`` (the backbone's output, what its head reads); where that map
    is 1x1 (small inputs, LeNet-5's C5) the last larger map inside ``features``. Any other
    model: the last layer, in the order calls finish, whose output is a 4-D map larger than
    1x1 (for a spec, the layer feeding the global pooling or flatten). ``any_size``: 1x1 maps
    count too (CAM reads exactly the map the global pooling averages).
    """
    trace = trace_layers(root, x)
    maps = [(name, shape[2] * shape[3]) for name, _, shape in trace if len(shape) == 4]
    if not maps:
        raise CnnlabError("the model has no convolutional layer (no layer outputs a feature map (N, C, H, W))",
                          where="model", fix="explain a convolutional network; for other models use "
                                             "--method saliency, integrated-gradients or occlusion")
    sizes = dict(maps)
    if isinstance(getattr(root, "features", None), nn.Module) and "features" in sizes:
        if any_size or sizes["features"] > 1:
            return "features"
        inner = [name for name, size in maps if name.startswith("features.") and size > 1]
        return inner[-1] if inner else "features"
    larger = [name for name, size in maps if size > 1 or any_size]
    return (larger or [name for name, _ in maps])[-1]


def row_names(root: nn.Module) -> set[str]:
    """The names `cnnlab summary` gives a row: leaves and cnnlab layers, not their insides."""
    out: set[str] = set()

    def visit(prefix: str, module: nn.Module) -> None:
        children = list(module.named_children())
        if prefix and (getattr(module, "_cnnlab_atomic", False) or not children):
            out.add(display_name(root, prefix))
            return
        for name, child in children:
            visit(f"{prefix}.{name}" if prefix else name, child)

    visit("", root)
    return out


_DEFAULT_LAYERS: weakref.WeakKeyDictionary[nn.Module, dict[tuple[Any, ...], str]] = weakref.WeakKeyDictionary()


def resolve_layer(root: nn.Module, layer: str | nn.Module | None, x: torch.Tensor,
                  any_size: bool = False) -> tuple[str, nn.Module]:
    """(summary name, module) of ``layer`` (a summary name, a module path or a module), checked
    to output a feature map; unknown names raise listing the valid ones."""
    if isinstance(layer, nn.Module):
        for qualified, module in root.named_modules():
            if module is layer:
                return display_name(root, qualified) or type(root).__name__, module
        raise CnnlabError("the layer module is not part of the model", where="layer",
                          fix="pass a layer name as `cnnlab summary` prints it")
    if layer is None:  # found once per model and input size (a server explains many requests)
        known = _DEFAULT_LAYERS.setdefault(root, {})
        key = (tuple(x.shape[1:]), any_size)
        if key not in known:
            known[key] = default_layer(root, x, any_size)
        layer = known[key]
    module = None
    if _is_spec(root) and layer in root.layers:
        module = root.layers[layer]
    else:
        try:
            module = root.get_submodule(layer) if layer else None
        except AttributeError:
            module = None
    trace = trace_layers(root, x) if module is None else None
    if module is None:
        names = _feature_layers(trace or [])
        raise CnnlabError(f"the model has no layer {layer!r}", where="--layer",
                          fix=f"use a layer with a feature map: {_listing(names, layer)}" if names
                          else "this model has no convolutional layer")
    name = display_name(root, next(q for q, m in root.named_modules() if m is module))
    return name, module


def check_feature_map(name: str, out: Any, root: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``out`` when it is a feature map (N, C, H, W); else a one-line error listing the layers that give one."""
    if isinstance(out, torch.Tensor) and out.dim() == 4:
        return out
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    names = _feature_layers(trace_layers(root, x))
    raise CnnlabError(f"layer {name!r} outputs {shape}, not a feature map (N, C, H, W)", where="--layer",
                      fix=f"use a convolutional layer: {_listing(names, name)}" if names
                      else "this model has no convolutional layer")


@contextlib.contextmanager
def capture(module: nn.Module, need_grad: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Forward hook keeping ``module``'s output as ``box['A']`` (the last call's, if called twice).

    The network downstream gets a clone, so an in-place op after the layer (``out += x``, an
    in-place ReLU) cannot overwrite the captured map; gradients reach ``A`` through the clone.
    The hook is removed when the block ends, whatever happens inside it.
    """
    box: dict[str, torch.Tensor] = {}

    def hook(mod: nn.Module, args: Any, out: Any) -> Any:
        if not isinstance(out, torch.Tensor):
            box["A"] = out
            return None
        if need_grad and not out.requires_grad:  # frozen layers: still differentiable w.r.t. A
            out = out.detach().requires_grad_(True)
        box["A"] = out
        return out.clone()

    handle = module.register_forward_hook(mine(hook))
    try:
        yield box
    finally:
        handle.remove()


# ------------------------------------------------------------------------- targets


def resolve_targets(target: Any, scores: torch.Tensor, subject: Subject) -> torch.Tensor:
    """None -> the predicted class per image; an index or a class name, or one per image."""
    n, k = scores.shape
    if target is None:
        return scores.argmax(1)
    items = list(target) if isinstance(target, (list, tuple, np.ndarray, torch.Tensor)) else [target] * n
    if len(items) != n:
        raise CnnlabError(f"{len(items)} targets for {n} images", where="target",
                          fix="give one target, or one per image")
    out = [_one_target(t, k, subject) for t in items]
    return torch.tensor(out, dtype=torch.long, device=scores.device)


def _one_target(t: Any, k: int, subject: Subject) -> int:
    classes = subject.classes
    if isinstance(t, torch.Tensor):
        t = t.item()
    if isinstance(t, (np.integer,)):
        t = int(t)
    if isinstance(t, str) and not (classes and t in classes) and t.lstrip("-").isdigit():
        t = int(t)
    valid = f"the classes are: {', '.join(classes)}" if classes else f"use an index from 0 to {k - 1}"
    if isinstance(t, str):
        if classes and t in classes:
            return classes.index(t)
        close = difflib.get_close_matches(t, classes or [], n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise CnnlabError(f"the model has no class {t!r}", where="--class", fix=hint + valid)
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < k:
        raise CnnlabError(f"class index {t!r} is out of range (the model has {k} output(s))", where="--class",
                          fix=valid)
    return t


# ------------------------------------------------------------------------- maps


def finish(raw: torch.Tensor, size: tuple[int, int], method: str, layer: str,
           targets: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[bool]]:
    """raw (N, h, w) -> (maps (N, H, W) in [0, 1], raw numpy, empty flags).

    maps = up(max(raw, 0)) / max(up(max(raw, 0))), ``up`` bilinear (align_corners=False). A
    map with no positive value is returned as zeros, with a warning, never as NaN.
    """
    raw = raw.detach().float()
    positive = raw.clamp(min=0)[:, None]
    if tuple(positive.shape[-2:]) != tuple(size):
        positive = torch.nn.functional.interpolate(positive, size=size, mode="bilinear", align_corners=False)
    positive = positive[:, 0]
    peak = positive.flatten(1).amax(1) if positive.numel() else torch.zeros(len(raw))
    finite = torch.isfinite(positive).flatten(1).all(1)
    empty = ~(peak > 0) | ~finite
    maps = torch.where(empty[:, None, None], torch.zeros_like(positive),
                       positive / torch.where(empty, torch.ones_like(peak), peak)[:, None, None])
    flags = [bool(e) for e in empty.tolist()]
    for i, flag in enumerate(flags):
        if flag:
            warnings.warn(f"{method} map of image {i} (class {targets[i]}) at layer {layer!r} has no positive "
                          f"value: returned as zeros (nothing in this layer speaks for that class)",
                          stacklevel=3)
    return (maps.clamp(0, 1).cpu().numpy().astype(np.float32), raw.cpu().numpy().astype(np.float32), flags)
