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

from collections.abc import Callable, Sequence

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

    ``update`` only keeps references to the batch's (detached) loss, outputs and
    targets: no op runs per step. Every ``fold_every`` batches, and whenever the
    sums are read, the pending batches are scored together in a few batched ops
    and added to the float64 sums in sample order (a running sum), so the result
    does not depend on when it was read: a resumed epoch sums exactly like an
    uninterrupted one (on the CPU). The sample count is a host integer, so on CUDA
    the host never waits for the device.
    """

    def __init__(self, names: Sequence[str], device: torch.device | str = "cpu", fold_every: int = 64) -> None:
        self.names = canonical_metrics(names)
        self.device = torch.device(device)
        self.fold_every = fold_every
        self.reset()

    def reset(self) -> None:
        # sums[0] = loss * n, then one slot per metric (sums over samples); count on the host.
        self.sums = torch.zeros(1 + len(self.names), dtype=torch.float64, device=self.device)
        self.count = 0
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def update(self, loss: torch.Tensor, outputs: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: ``loss`` the batch mean, ``outputs`` logits or regression values."""
        self.count += outputs.shape[0]
        # the target is copied: a loader may refill the same buffer for the next batch
        self._pending.append((loss.detach(), outputs.detach(), target.detach().clone()))
        if len(self._pending) >= self.fold_every:
            self._fold()

    def _fold(self) -> None:
        if not self._pending:
            return
        losses, outputs, targets = zip(*self._pending)
        self._pending = []
        sizes = torch.tensor([o.shape[0] for o in outputs], dtype=torch.float32).to(losses[0].device)
        loss_sums = (torch.stack([loss.float() for loss in losses]) * sizes).to(self.device, torch.float64)
        # Running sums in sample order (cumsum is sequential on the CPU): the same float64
        # totals whatever the fold points were.
        loss_total = torch.cat([self.sums[:1], loss_sums]).cumsum(0)[-1:]
        if not self.names:
            self.sums = loss_total
            return
        outputs_all, targets_all = torch.cat(outputs), torch.cat(targets)
        per_sample = torch.stack([self._per_sample(name, outputs_all, targets_all) for name in self.names], 1)
        metric_total = torch.cat([self.sums[None, 1:], per_sample.to(self.device, torch.float64)]).cumsum(0)[-1]
        self.sums = torch.cat([loss_total, metric_total])

    @staticmethod
    def _per_sample(name: str, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The metric of each sample, (N,) float32 on the outputs' device."""
        flat = outputs.reshape(outputs.shape[0], -1)
        if name in ("mae", "mse"):
            diff = flat.float() - target.float().reshape(flat.shape)
            per = diff.abs() if name == "mae" else diff.square()
            return per.mean(-1)
        if flat.shape[1] == 1:  # one sigmoid unit: logit > 0 <=> probability > 0.5
            if name == "top5_accuracy":  # with two classes the top 5 always hits
                return flat.new_ones(flat.shape[0], dtype=torch.float32)
            predicted = (flat[:, 0] > 0).long()
            truth = target.reshape(-1).round().long()
            return (predicted == truth).float()
        truth = class_indices(target, outputs)
        if name == "accuracy":
            return (flat.argmax(-1) == truth).float()
        k = min(5, flat.shape[1])
        top = flat.topk(k, dim=-1).indices
        return (top == truth[:, None]).any(-1).float()

    def compute(self, prefix: str = "") -> dict[str, float]:
        """Epoch means as Python floats (one device sync)."""
        self._fold()
        values = self.sums.tolist()
        count = max(float(self.count), 1.0)
        out = {f"{prefix}loss": values[0] / count}
        for name, total in zip(self.names, values[1:]):
            out[f"{prefix}{name}"] = total / count
        return out

    def reduced(self, reduce: Callable[[torch.Tensor], torch.Tensor], prefix: str = "") -> dict[str, float]:
        """Epoch means over several processes: ``reduce`` sums ``[loss * n, metric sums..., n]``
        (float64) over the ranks, e.g. with an all-reduce; this tracker's own sums are unchanged."""
        self._fold()
        total = reduce(torch.cat([self.sums, self.sums.new_tensor([float(self.count)])])).tolist()
        count = max(total[-1], 1.0)
        out = {f"{prefix}loss": total[0] / count}
        for name, value in zip(self.names, total[1:-1]):
            out[f"{prefix}{name}"] = value / count
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        """``sums`` = [loss * n, n, metric sums...] (float64, CPU), the saved-state layout."""
        self._fold()
        sums = self.sums.detach().cpu()
        return {"sums": torch.cat([sums[:1], torch.tensor([float(self.count)], dtype=torch.float64), sums[1:]])}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        saved = state["sums"].to(torch.float64)
        self.count = int(round(float(saved[1])))
        self.sums = torch.cat([saved[:1], saved[2:]]).to(self.device).clone()
        self._pending = []
