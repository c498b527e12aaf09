"""The learning-rate range test (Smith 2017; fastai's ``lr_find``): which rate to train at.

Train for at most ``steps`` steps while the rate grows exponentially from
``start_lr`` to ``end_lr``::

    lr_i = start_lr * (end_lr / start_lr) ** (i / (steps - 1))

and record the loss, smoothed as an exponential moving average with bias
correction (``avg_i = beta * avg_{i-1} + (1 - beta) * loss_i``,
``smoothed_i = avg_i / (1 - beta ** (i + 1))``). The test stops early once the
smoothed loss exceeds ``diverge`` x its minimum. The suggested rate is where the
smoothed loss falls fastest against log(lr) (the steepest negative slope before
the minimum). Weights, optimiser state and RNG are put back afterwards, so the
test changes nothing; each parameter group keeps its ratio to the head's rate
(``lr_mult``: discriminative rates are tested as they will train).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.errors import CnnlabError


@dataclass
class LRFindResult:
    """Rates tried, raw and smoothed losses, the suggested rate, and the plot's path (if written)."""

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]
    suggestion: float
    png: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"suggested_lr": self.suggestion, "steps": len(self.lrs), "lrs": self.lrs, "losses": self.losses,
                "raw_losses": self.raw_losses, "png": str(self.png) if self.png else None}


def exponential_rates(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    """``steps`` rates growing geometrically from ``start_lr`` to ``end_lr`` (both included)."""
    if not (0 < start_lr < end_lr):
        raise CnnlabError(f"the range {start_lr:g}..{end_lr:g} is not increasing and positive", where="lr-find",
                          fix="give 0 < --start-lr < --end-lr, e.g. 1e-7 and 10")
    if not 2 <= steps <= 100:
        raise CnnlabError(f"{steps} steps is outside 2..100", where="lr-find --steps", fix="use at most 100 steps")
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / (steps - 1))


def suggest(lrs: list[float], losses: list[float], skip_start: int = 5) -> float:
    """The rate of the steepest descent of ``losses`` (smoothed) against log10(lr), before their minimum."""
    if len(lrs) < 3:
        return float(lrs[0]) if lrs else 1e-3
    logs = np.log10(np.asarray(lrs, dtype=np.float64))
    values = np.asarray(losses, dtype=np.float64)
    end = int(np.argmin(values)) + 1
    start = min(skip_start, max(0, end - 3))
    if end - start < 3:
        return float(lrs[max(0, end - 1)] / 10)  # the minimum came almost at once: a tenth of it
    slopes = np.gradient(values[start:end], logs[start:end])
    return float(lrs[start + int(np.argmin(slopes))])


def range_test(trainer: Any, loader: Any, *, start_lr: float = 1e-7, end_lr: float = 10.0, steps: int = 100,
               beta: float = 0.98, diverge: float = 4.0) -> LRFindResult:
    """Run the test with a :class:`~cnnlab.train.trainer.Trainer` (its model, loss, optimiser, device) on ``loader``."""
    from cnnlab.train import state as ckpt

    if trainer.head is None:
        trainer._find_head(loader)
    rates = exponential_rates(start_lr, end_lr, steps)
    model, optimizer = trainer.model, trainer.optimizer
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_rng = ckpt.rng_state()
    was_training = model.training
    mults = [float(g.get("lr_mult", 1.0)) for g in optimizer.param_groups]
    first = mults[0] or 1.0
    lrs: list[float] = []
    raw: list[float] = []
    smoothed: list[float] = []
    average, best = 0.0, math.inf
    model.train()
    try:
        with trainer.head.logits():
            batches = _cycle(loader)
            for i, lr in enumerate(rates):
                for group, mult in zip(optimizer.param_groups, mults):
                    group["lr"] = float(lr) * mult / first
                x, y = trainer._to_device(*next(batches))
                with trainer._autocast():
                    outputs = trainer.forward_model(x)
                loss = trainer._loss(outputs.float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    break
                average = beta * average + (1 - beta) * value
                current = average / (1 - beta ** (i + 1))
                lrs.append(float(lr))
                raw.append(value)
                smoothed.append(current)
                best = min(best, current)
                if i > 0 and current > diverge * best:
                    break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        ckpt.set_rng_state(saved_rng)
        model.train(was_training)
    if not lrs:
        raise CnnlabError("the loss was not finite from the first step", where="lr-find",
                          fix="lower --start-lr, or check the data and the model")
    return LRFindResult(lrs, smoothed, raw, suggest(lrs, smoothed))


def _cycle(loader: Any):
    epoch = 0
    while True:
        batches = loader.iter_epoch(epoch) if hasattr(loader, "iter_epoch") else iter(loader)
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise CnnlabError("the training set gives no batch", where="lr-find", fix="give a data set with images")
        epoch += 1


def save_plot(result: LRFindResult, path: str | Path) -> Path:
    """Loss against the rate (log scale), the smoothed curve and the suggested rate marked; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnlab.files import atomic_path

    path = Path(path)
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(result.lrs, result.raw_losses, color="0.75", linewidth=1, label="loss")
    axes.plot(result.lrs, result.losses, color="C0", linewidth=2, label="smoothed loss")
    axes.axvline(result.suggestion, color="C3", linestyle="--", label=f"suggested {result.suggestion:.2e}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    axes.set_title("learning-rate range test")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    result.png = path
    return path
