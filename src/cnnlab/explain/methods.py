"""Class activation maps, Grad-CAM, Grad-CAM++ and the Captum attribution methods.

Notation: A_n (n = 1..N) the feature maps of the explained layer for one image, each h x w;
y^k the score of class k before the softmax (a regression model's output value).

- CAM (the lecture notes' explainability section; Zhou et al. 2016), for a head that is
  global average pooling then one dense layer, s_k = softmax(sum_n W_{n,k} mu_n) with
  mu_n = mean_{x,y} A_n[x, y]:  M_k[x, y] = sum_n W_{n,k} A_n[x, y].
- Grad-CAM (Selvaraju et al. 2017): alpha_n^k = (1 / hw) sum_{x,y} dy^k / dA_n[x, y],
  L^k = ReLU(sum_n alpha_n^k A_n). On a GAP + dense head dy^k/dA_n[x, y] = W_{n,k} / hw, so
  L^k = ReLU(M_k) / hw: Grad-CAM is CAM up to scale there.
- Grad-CAM++ (Chattopadhyay et al. 2018), with the exponential-score closed form:
  g = dy^k/dA, a_n[x, y] = g^2 / (2 g^2 + sum_{x,y} A_n * g^3), w_n = sum_{x,y} a_n ReLU(g),
  L^k = ReLU(sum_n w_n A_n).
- Guided Grad-CAM, integrated gradients, saliency and occlusion come from Captum; their
  per-pixel map is sum_c |attribution_c| (occlusion: the positive part of the channel mean).

Every map is upsampled bilinearly to the input's size and scaled to [0, 1] (see
:func:`cnnlab.explain.core.finish`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.explain.core import (
    LOCK,
    Explanation,
    Scores,
    Subject,
    as_input,
    capture,
    check_feature_map,
    device_of,
    evaluating,
    finish,
    float32,
    mine,
    probabilities_of,
    resolve_layer,
    resolve_targets,
    row_names,
    subject_of,
    trace_layers,
)

METHODS = ("cam", "gradcam", "gradcam++", "guided-gradcam", "integrated-gradients", "saliency", "occlusion")
LAYER_METHODS = ("cam", "gradcam", "gradcam++", "guided-gradcam")
_ALIASES = {"grad-cam": "gradcam", "gradcam_pp": "gradcam++", "gradcampp": "gradcam++", "grad-cam++": "gradcam++",
            "guided_gradcam": "guided-gradcam", "ig": "integrated-gradients",
            "integrated_gradients": "integrated-gradients"}
BATCH = 64  # images per pass: bounds the memory of the activations kept for the backward pass


def explain(model: Any, images: Any, method: str = "gradcam", target: Any = None,
            layer: str | nn.Module | None = None, *, batch_size: int = BATCH, **options: Any) -> Explanation:
    """Explain the model's score for ``target`` on each image with ``method`` (one of METHODS).

    ``model``: a loaded bundle (``cnnlab.load``) or an ``nn.Module``. ``images``: a float
    tensor (N, C, H, W) as the network takes it or, with a bundle, paths / PIL images / uint8
    arrays. ``target``: a class index or name (or one per image); default the predicted class.
    ``layer``: a layer name as ``cnnlab summary`` prints it; default the last feature map
    before the head. ``options`` go to the Captum method (``n_steps``, ``window``, ``stride``).
    """
    key = _ALIASES.get(str(method).lower(), str(method).lower())
    if key not in METHODS:
        raise CnnlabError(f"unknown method {method!r}", where="--method", fix=f"use one of {', '.join(METHODS)}")
    with LOCK:  # one explanation at a time (Captum's hooks are not per thread); predict may run alongside
        return _explain(model, images, key, target, layer, batch_size, options)


def _explain(model: Any, images: Any, key: str, target: Any, layer: Any, batch_size: int,
             options: dict[str, Any]) -> Explanation:
    x = as_input(model, images)
    if len(x) == 0:
        raise CnnlabError("no image to explain", where="images", fix="give at least one image")
    module = float32(model)
    x = x.to(device_of(module))
    subject = subject_of(model, x, module)
    name, layer_module = resolve_layer(module, layer, x, any_size=key == "cam") if (key in LAYER_METHODS or layer is not None) \
        else ("input", None)
    parts = [_BATCHED[key](subject, x[i:i + batch_size], layer_module, name, target if not _per_image(target)
                           else list(target)[i:i + batch_size], options)
             for i in range(0, len(x), batch_size)]
    raw = torch.cat([p[0] for p in parts])
    targets = torch.cat([p[1] for p in parts])
    scores = torch.cat([p[2] for p in parts])
    maps, raw_np, empty = finish(raw, tuple(x.shape[-2:]), key, name, targets.tolist())
    return Explanation(maps=maps, raw=raw_np, targets=[int(t) for t in targets.tolist()],
                       probabilities=probabilities_of(subject, scores, targets), layer=name, method=key,
                       empty=empty, classes=subject.classes,
                       scores=scores.gather(1, targets[:, None])[:, 0].detach().cpu().numpy().astype(np.float32))


def cam(model: Any, images: Any, target: Any = None, layer: str | nn.Module | None = None) -> Explanation:
    """Class activation map M_k[x, y] = sum_n W_{n,k} A_n[x, y] (GAP + one dense head only).

    ``raw`` is M_k itself, signed, at the feature map's size; ``maps`` its positive part,
    upsampled bilinearly and divided by its maximum. A head other than global average
    pooling followed by one dense layer is refused (use :func:`gradcam`).
    """
    return explain(model, images, "cam", target, layer)


def gradcam(model: Any, images: Any, target: Any = None, layer: str | nn.Module | None = None) -> Explanation:
    """Grad-CAM: L^k = ReLU(sum_n alpha_n^k A_n), alpha_n^k = mean_{x,y} dy^k / dA_n[x, y]."""
    return explain(model, images, "gradcam", target, layer)


def gradcam_pp(model: Any, images: Any, target: Any = None, layer: str | nn.Module | None = None) -> Explanation:
    """Grad-CAM++: L^k = ReLU(sum_n w_n A_n), w_n = sum_{x,y} a_n ReLU(dy^k/dA_n) (see the module doc)."""
    return explain(model, images, "gradcam++", target, layer)


def _per_image(target: Any) -> bool:
    return isinstance(target, (list, tuple, np.ndarray, torch.Tensor)) and not (
        isinstance(target, torch.Tensor) and target.dim() == 0)


# ----------------------------------------------------------------------- layer methods


def _forward(subject: Subject, x: torch.Tensor, layer: nn.Module, name: str, need_grad: bool = True):
    """(A, scores) with A the layer's output, the graph kept for a backward pass to A."""
    scorer = Scores(subject)
    with evaluating(subject.module), capture(layer, need_grad) as box, torch.set_grad_enabled(need_grad):
        scores = scorer(x)
    a = check_feature_map(name, box.get("A"), subject.module, x)
    return a, scores


def _gradients(subject: Subject, x: torch.Tensor, layer: nn.Module, name: str, target: Any):
    a, scores = _forward(subject, x, layer, name)
    targets = resolve_targets(target, scores.detach(), subject)
    chosen = scores.gather(1, targets[:, None]).sum()
    if not chosen.requires_grad:
        raise CnnlabError(f"the score does not depend on layer {name!r}", where="--layer",
                          fix="choose a layer the prediction is computed from")
    # Gradients w.r.t. A only: no parameter's .grad is touched, and the backward pass stops at A.
    (grad,) = torch.autograd.grad(chosen, a, allow_unused=True)
    if grad is None:
        raise CnnlabError(f"the score does not depend on layer {name!r}", where="--layer",
                          fix="choose a layer the prediction is computed from")
    return a.detach(), grad.detach(), targets, scores.detach()


def _gradcam(subject, x, layer, name, target, options):
    a, grad, targets, scores = _gradients(subject, x, layer, name, target)
    alpha = grad.mean((2, 3), keepdim=True)
    return torch.relu((alpha * a).sum(1)), targets, scores


def _gradcam_pp(subject, x, layer, name, target, options):
    a, grad, targets, scores = _gradients(subject, x, layer, name, target)
    g2, g3 = grad ** 2, grad ** 3
    denominator = 2 * g2 + a.sum((2, 3), keepdim=True) * g3
    denominator = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    coefficients = torch.where(grad != 0, g2 / denominator, torch.zeros_like(grad))
    weights = (coefficients * torch.relu(grad)).sum((2, 3), keepdim=True)
    return torch.relu((weights * a).sum(1)), targets, scores


def _cam(subject, x, layer, name, target, options):
    linears: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
    handles = [m.register_forward_hook(mine(lambda mod, args, out: linears.append((mod, args[0], out))))
               for m in subject.module.modules() if isinstance(m, nn.Linear)]
    try:
        a, scores = _forward(subject, x, layer, name, need_grad=False)
    finally:
        for handle in handles:
            handle.remove()
    dense = _gap_dense(subject, a, scores, linears)
    if dense is None:
        raise CnnlabError(f"cam needs global average pooling then one dense layer after layer {name!r}; "
                          f"this model's head is {_head_after(subject, x, name)}", where="--method cam",
                          fix="use --method gradcam (Grad-CAM works on any head; on a GAP + dense head it is CAM)")
    weight = dense.weight.detach().float()
    if subject.binary:
        weight = torch.cat([-weight, weight])
    targets = resolve_targets(target, scores, subject)
    # M_k[x, y] = sum_n W_{n,k} A_n[x, y]
    maps = torch.einsum("nf,nfhw->nhw", weight[targets], a.detach().float())
    return maps, targets, scores


def _gap_dense(subject: Subject, a: torch.Tensor, scores: torch.Tensor, linears: list) -> nn.Module | None:
    """The dense layer when the head is GAP -> [flatten / dropout] -> dense, else None.

    Checked on the numbers, whatever the head's modules are called: the last dense layer's
    input must be the spatial mean of A, and its output (before any activation) the scores.
    """
    if not linears:
        return None
    dense, z, _ = linears[-1]
    n, f = a.shape[:2]
    if z.dim() != 2 or tuple(z.shape) != (n, f):
        return None
    mu = a.float().mean((2, 3))
    scale = float(mu.abs().max()) + 1e-12
    if not torch.allclose(z.float(), mu, rtol=1e-4, atol=1e-5 * scale):
        return None
    logits = torch.nn.functional.linear(z.float(), dense.weight.float(),
                                        None if dense.bias is None else dense.bias.float())
    if subject.binary:
        logits = torch.cat([-logits, logits], 1)
    if logits.shape != scores.shape or not torch.allclose(logits, scores, rtol=1e-4,
                                                          atol=1e-5 * (float(scores.abs().max()) + 1e-12)):
        return None
    return dense


def _head_after(subject: Subject, x: torch.Tensor, name: str) -> str:
    """'Flatten -> Dense(2048) -> Dense(1)': the layers that run after ``name``, by type."""
    trace = trace_layers(subject.module, x)
    names = [n for n, _, _ in trace]
    if name not in names:
        return "unknown"
    start = len(names) - 1 - names[::-1].index(name)
    rows = row_names(subject.module)
    parts = []
    for layer_name, module, shape in trace[start + 1:]:
        if layer_name not in rows:
            continue  # containers and the insides of a layer: the summary's rows only
        label = type(module).__name__
        if isinstance(module, nn.Linear):
            label += f"({module.out_features})"
        parts.append(label)
    return " -> ".join(parts) or "empty"


# ----------------------------------------------------------------------- Captum methods


def _captum(subject: Subject, x: torch.Tensor, target: Any, run: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]):
    scorer = Scores(subject)
    with evaluating(subject.module), torch.enable_grad():
        with torch.no_grad():
            scores = scorer(x)
        targets = resolve_targets(target, scores, subject)
        attribution = run(scorer, x.clone().requires_grad_(True), targets)
    return attribution.detach().float(), targets, scores


def _abs_sum(attribution: torch.Tensor) -> torch.Tensor:
    return attribution.abs().sum(1)


def _saliency(subject, x, layer, name, target, options):
    from captum.attr import Saliency

    attribution, targets, scores = _captum(subject, x, target,
                                           lambda f, xi, t: Saliency(f).attribute(xi, target=t, abs=True))
    return _abs_sum(attribution), targets, scores


def _integrated_gradients(subject, x, layer, name, target, options):
    from captum.attr import IntegratedGradients

    steps = int(options.get("n_steps", 32))

    def run(f, xi, t):
        # Baseline: the zero input (a blank image at the network's mean after standardisation).
        return IntegratedGradients(f).attribute(xi, baselines=torch.zeros_like(xi), target=t, n_steps=steps,
                                                internal_batch_size=max(len(xi), BATCH))

    attribution, targets, scores = _captum(subject, x, target, run)
    return _abs_sum(attribution), targets, scores


def _occlusion(subject, x, layer, name, target, options):
    from captum.attr import Occlusion

    c, h, w = x.shape[1:]
    window = int(options.get("window", max(3, min(h, w) // 8)))
    stride = int(options.get("stride", max(1, window // 2)))

    def run(f, xi, t):
        return Occlusion(f).attribute(xi, sliding_window_shapes=(c, window, window), strides=(c, stride, stride),
                                      target=t, baselines=0.0, perturbations_per_eval=8)

    attribution, targets, scores = _captum(subject, x, target, run)
    return attribution.mean(1), targets, scores  # positive: hiding the patch lowers the score


def _guided_gradcam(subject, x, layer, name, target, options):
    from captum.attr import GuidedGradCam

    check_feature_map(name, _layer_output(subject, x[:1], layer), subject.module, x)
    def run(f, xi, t):
        with warnings.catch_warnings():  # Captum says it hooks the ReLUs (and removes them after)
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            return GuidedGradCam(f, layer).attribute(xi, target=t, interpolate_mode="bilinear")

    attribution, targets, scores = _captum(subject, x, target, run)
    return _abs_sum(attribution), targets, scores


def _layer_output(subject: Subject, x: torch.Tensor, layer: nn.Module) -> Any:
    with torch.no_grad(), evaluating(subject.module), capture(layer, need_grad=False) as box:
        subject.module(x)
    return box.get("A")


_BATCHED: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {
    "cam": _cam,
    "gradcam": _gradcam,
    "gradcam++": _gradcam_pp,
    "guided-gradcam": _guided_gradcam,
    "integrated-gradients": _integrated_gradients,
    "saliency": _saliency,
    "occlusion": _occlusion,
}
