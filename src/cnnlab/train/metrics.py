"""Metrics accumulated on the training device, read back once per epoch.

``update`` only adds into a few device tensors (no ``.item()``), so the step
loop never waits for the device; ``compute`` syncs once. The sums are part of
the training state, so an epoch resumed mid-way reports what an uninterrupted
one would.

Names (Keras's): ``accuracy`` (argmax for K > 1 outputs, 0.5 threshold on the
sigmoid for one output), ``top5_accuracy`` (Keras ``top_k_categorical_accuracy``
with k=5), ``mae`` (mean absolute error, regression), ``mse``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnlab.errors import CnnlabError

ALIASES = {
    "accuracy": "accuracy",
    "acc": "accuracy",
    "categorical_accuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy",
    "top5_accuracy": "top5_accuracy",
    "top5": "top5_accuracy",
    "top_k_categorical_accuracy": "top5_accuracy",
    "sparse_top_k_categorical_accuracy": "top5_accuracy",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "mse": "mse",
    "mean_squared_error": "mse",
}


def canonical_metrics(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        key = name.strip().lower().replace("-", "_")
        if key not in ALIASES:
            raise CnnlabError(f"unknown metric {name!r}", where="metrics",
                              fix=f"use some of {', '.join(sorted(set(ALIASES.values())))}")
        if ALIASES[key] not in out:
            out.append(ALIASES[key])
    return out


def class_indices(target: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """(N,) class indices from sparse (N,) or one-hot (N, K) targets."""
    return target.argmax(-1) if target.dim() == outputs.dim() and target.dim() > 1 else target.reshape(-1).long()


class MetricTracker:
    """Running sums of loss and metrics over one epoch, kept on ``device``.

    Per step: a handful of small device ops and no host<->device copy (the sample
    count is a host integer), so on CUDA the host never waits for the device.
    """

    def __init__(self, names: Sequence[str], device: torch.device | str = "cpu") -> None:
        self.names = canonical_metrics(names)
        self.device = torch.device(device)
        self.reset()

    def reset(self) -> None:
        # sums[0] = loss * n, then one slot per metric (sums over samples); count on the host.
        self.sums = torch.zeros(1 + len(self.names), dtype=torch.float64, device=self.device)
        self.count = 0

    @torch.no_grad()
    def update(self, loss: torch.Tensor, outputs: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: ``loss`` the batch mean, ``outputs`` logits or regression values."""
        n = outputs.shape[0]
        self.count += n
        outputs = outputs.detach().float()
        parts = [loss.detach().float() * n]
        for name in self.names:
            parts.append(self._batch_sum(name, outputs, target))
        self.sums += torch.stack(parts).to(self.device, torch.float64)

    @staticmethod
    def _batch_sum(name: str, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The metric summed over the batch, a float32 scalar on the outputs' device."""
        flat = outputs.reshape(outputs.shape[0], -1)
        if name in ("mae", "mse"):
            diff = flat - target.float().reshape(flat.shape)
            per = diff.abs() if name == "mae" else diff.square()
            return per.mean(-1).sum()
        if flat.shape[1] == 1:  # one sigmoid unit: logit > 0 <=> probability > 0.5
            if name == "top5_accuracy":  # with two classes the top 5 always hits
                return flat.new_full((), float(flat.shape[0]))
            predicted = (flat[:, 0] > 0).long()
            truth = target.reshape(-1).round().long()
            return (predicted == truth).sum(dtype=torch.float32)
        truth = class_indices(target, outputs)
        if name == "accuracy":
            return (flat.argmax(-1) == truth).sum(dtype=torch.float32)
        k = min(5, flat.shape[1])
        top = flat.topk(k, dim=-1).indices
        return (top == truth[:, None]).any(-1).sum(dtype=torch.float32)

    def compute(self, prefix: str = "") -> dict[str, float]:
        """Epoch means as Python floats (one device sync)."""
        values = self.sums.tolist()
        count = max(float(self.count), 1.0)
        out = {f"{prefix}loss": values[0] / count}
        for name, total in zip(self.names, values[1:]):
            out[f"{prefix}{name}"] = total / count
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``sums`` = [loss * n, n, metric sums...] (float64, CPU), the saved-state layout."""
        sums = self.sums.detach().cpu()
        return {"sums": torch.cat([sums[:1], torch.tensor([float(self.count)], dtype=torch.float64), sums[1:]])}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        saved = state["sums"].to(torch.float64)
        self.count = int(round(float(saved[1])))
        self.sums = torch.cat([saved[:1], saved[2:]]).to(self.device).clone()
