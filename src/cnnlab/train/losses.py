"""Losses with Keras's names and meanings, computed on logits for stability.

Every classification loss here takes *logits* (the pre-activation output): the
trainer strips a trailing softmax / sigmoid from the model while it trains (see
:mod:`cnnlab.inference.head`), which is what Keras's ``from_logits=True`` does and
avoids ``log(0)``.

Shapes, with N the batch size and K the number of classes:

- ``categorical_crossentropy``: logits (N, K), targets one-hot / soft (N, K)
  or class indices (N,) (converted).
- ``sparse_categorical_crossentropy``: logits (N, K), targets (N,) int64.
- ``binary_crossentropy``: logits (N,) or (N, 1), targets (N,) in {0, 1}.
- ``mse`` / ``mae`` / ``huber``: outputs (N, D) or (N,), targets the same size.

Reduction follows Keras's ``sum_over_batch_size``: per-sample losses times
their class weight, summed, divided by N (not by the sum of the weights, which
is what ``torch.nn.CrossEntropyLoss(weight=...)`` would do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ALIASES = {
    "categorical_crossentropy": "categorical_crossentropy",
    "categorical": "categorical_crossentropy",
    "cce": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
    "sparse_categorical": "sparse_categorical_crossentropy",
    "crossentropy": "sparse_categorical_crossentropy",
    "binary_crossentropy": "binary_crossentropy",
    "binary": "binary_crossentropy",
    "bce": "binary_crossentropy",
    "mse": "mse",
    "mean_squared_error": "mse",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "huber": "huber",
}
CLASSIFICATION = {"categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"}


def canonical_loss(name: str) -> str:
    """The canonical name of a loss (``'cce'`` -> ``'categorical_crossentropy'``)."""
    key = name.strip().lower().replace("-", "_")
    if key not in ALIASES:
        raise CnnlabError(
            f"unknown loss {name!r}",
            where="loss",
            fix=f"use one of {', '.join(sorted(set(ALIASES.values())))}",
        )
    return ALIASES[key]


def check_loss(name: str, task: str, units: int) -> str:
    """The canonical loss name, or a clear error when it cannot train this task / output.

    ``task``: ``classification`` or ``regression``; ``units``: the model's outputs per
    image. Regression takes mse / mae / huber; binary_crossentropy one sigmoid unit;
    the categorical cross-entropies two or more units.
    """
    kind = canonical_loss(name)
    if task == "regression" and kind in CLASSIFICATION:
        raise CnnlabError(f"{kind} is a classification loss and the data is a regression (numbers as targets)",
                          where="loss", fix="use mse, mae or huber (or leave the loss out to get mse)")
    if task != "regression" and kind not in CLASSIFICATION:
        raise CnnlabError(f"{kind} is a regression loss and the data is a classification (class labels as targets)",
                          where="loss", fix="use sparse_categorical_crossentropy (or leave the loss out)")
    if kind == "binary_crossentropy" and units != 1:
        raise CnnlabError(f"binary_crossentropy needs a model with one sigmoid output; this one has {units}",
                          where="loss", fix="use sparse_categorical_crossentropy, or end the model with Dense(1, sigmoid)")
    if kind in ("categorical_crossentropy", "sparse_categorical_crossentropy") and units < 2:
        raise CnnlabError(f"{kind} needs one output per class (two or more); this model has {units}",
                          where="loss", fix="use binary_crossentropy for a one-unit model")
    return kind


def _shape_error(what: str, output: torch.Tensor, target: torch.Tensor, fix: str) -> CnnlabError:
    return CnnlabError(f"{what}: the model's output is {tuple(output.shape)} and the targets are {tuple(target.shape)}",
                       where="loss", fix=fix)


def class_weights_from_counts(counts: Sequence[int]) -> torch.Tensor:
    """Keras / scikit-learn 'balanced' weights: w_c = N / (K * n_c); empty classes get 0."""
    counts_t = torch.as_tensor(list(counts), dtype=torch.float64)
    total, k = counts_t.sum(), int((counts_t > 0).sum())  # classes present, as scikit-learn
    weights = torch.where(counts_t > 0, total / (k * counts_t.clamp(min=1)), torch.zeros_like(counts_t))
    return weights.float()


def resolve_class_weight(
    class_weight: str | Mapping[int | str, float] | Sequence[float] | None,
    counts: Sequence[int] | None,
    num_classes: int,
    class_names: Sequence[str] | None = None,
) -> torch.Tensor | None:
    """Turn ``'auto'``, a mapping {class index or name: weight} or a list into a (K,) tensor."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight != "auto":
            raise CnnlabError(f"class_weight {class_weight!r} is not 'auto'", where="loss.class_weight",
                              fix="use 'auto' or a mapping {class: weight}")
        if counts is None:
            raise CnnlabError("class_weight 'auto' needs the class counts of the training set",
                              where="loss.class_weight", fix="train on a classification data set")
        return class_weights_from_counts(counts)
    weights = torch.ones(num_classes)
    if isinstance(class_weight, Mapping):
        names = list(class_names or [])
        for key, value in class_weight.items():
            if isinstance(key, str) and not key.isdigit():
                if key not in names:
                    raise CnnlabError(f"class_weight names unknown class {key!r}", where="loss.class_weight",
                                      fix=f"use one of {names}")
                index = names.index(key)
            else:
                index = int(key)
            if not 0 <= index < num_classes:
                raise CnnlabError(f"class_weight index {index} is outside 0..{num_classes - 1}",
                                  where="loss.class_weight", fix="use class indices of the data set")
            weights[index] = float(value)
        return weights
    values = [float(v) for v in class_weight]
    if len(values) != num_classes:
        raise CnnlabError(f"class_weight has {len(values)} values for {num_classes} classes",
                          where="loss.class_weight", fix="give one weight per class")
    return torch.tensor(values)


def make_loss(
    name: str,
    *,
    label_smoothing: float = 0.0,
    class_weight: torch.Tensor | None = None,
    huber_delta: float = 1.0,
) -> LossFn:
    """Build ``loss(logits_or_outputs, targets) -> scalar`` (see the module doc for shapes)."""
    kind = canonical_loss(name)
    if not 0.0 <= label_smoothing < 1.0:
        raise CnnlabError(f"label_smoothing {label_smoothing} is outside [0, 1)", where="loss.label_smoothing",
                          fix="use a value such as 0.1")
    if label_smoothing and kind not in CLASSIFICATION:
        raise CnnlabError(f"label_smoothing applies to cross-entropy losses, not {kind}",
                          where="loss.label_smoothing", fix="remove it or use a cross-entropy loss")
    smoothing = float(label_smoothing)

    def weighted_mean(per_sample: torch.Tensor, classes: torch.Tensor | None) -> torch.Tensor:
        if class_weight is not None and classes is not None:
            per_sample = per_sample * class_weight.to(per_sample.device)[classes]
        return per_sample.mean()

    if kind in ("categorical_crossentropy", "sparse_categorical_crossentropy"):

        def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            logits = logits.float()
            if logits.dim() != 2 or target.shape[:1] != logits.shape[:1] or target.dim() not in (1, 2) \
                    or (target.dim() == 2 and target.shape != logits.shape):
                raise _shape_error(f"{kind} takes outputs (N, K) and targets (N,) or (N, K)", logits, target,
                                   "end the model with Dense(K) for K classes, and give one label per image")
            if target.dim() == logits.dim():  # one-hot or soft targets (N, K)
                soft = target.float()
                if smoothing:
                    soft = soft * (1.0 - smoothing) + smoothing / logits.shape[-1]
                per = -(soft * F.log_softmax(logits, dim=-1)).sum(-1)
                classes = soft.argmax(-1) if class_weight is not None else None
                return weighted_mean(per, classes)
            if class_weight is None:  # one fused op forward and backward: the common case
                return F.cross_entropy(logits, target.long(), label_smoothing=smoothing)
            per = F.cross_entropy(logits, target.long(), reduction="none", label_smoothing=smoothing)
            return weighted_mean(per, target.long())

        return cross_entropy

    if kind == "binary_crossentropy":

        def binary(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            if target.numel() != logits.numel() or target.shape[:1] != logits.shape[:1]:
                raise _shape_error("binary_crossentropy takes one output and one 0/1 target per image (or D of each)",
                                   logits, target, "end the model with Dense(1, sigmoid), or use a categorical loss")
            logits = logits.float().reshape(target.shape[0], -1)
            y = target.float().reshape(logits.shape)
            smooth_y = y * (1.0 - smoothing) + 0.5 * smoothing if smoothing else y
            per = F.binary_cross_entropy_with_logits(logits, smooth_y, reduction="none").mean(-1)
            classes = y[:, 0].long() if class_weight is not None and y.shape[1] == 1 else None
            return weighted_mean(per, classes)

        return binary

    def regression(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.numel() != output.numel() or target.shape[:1] != output.shape[:1]:
            raise _shape_error(f"{kind} takes as many outputs per image as the target has numbers", output, target,
                               "end the model with Dense(D) for D numbers per image (Dense(1) for one)")
        output = output.float().reshape(target.shape[0], -1)
        y = target.float().reshape(output.shape)
        if kind == "mse":
            return F.mse_loss(output, y)
        if kind == "mae":
            return F.l1_loss(output, y)
        return F.huber_loss(output, y, delta=huber_delta)

    return regression
