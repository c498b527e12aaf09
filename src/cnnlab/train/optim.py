"""Optimisers and learning-rate schedules, by name.

Only parameters with ``requires_grad`` go to the optimiser, so frozen layers
(``trainable: false``) never move, not even through weight decay or momentum.

Schedules and when they step (``interval``):

========== ======== ==========================================================
name       interval lr at step / epoch t
========== ======== ==========================================================
constant   epoch    lr
step       epoch    lr * gamma ** floor(t / step_size)
exponential epoch   lr * gamma ** t
cosine     step     eta_min + (lr - eta_min) * (1 + cos(pi * t / T)) / 2
onecycle   step     torch's OneCycleLR with max_lr = lr over all T steps
plateau    epoch    lr * factor when ``monitor`` stalls ``patience`` epochs
inverse_time step   lr / (1 + decay * t): Keras's legacy ``SGD(decay=...)``
========== ======== ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "step", "exponential", "cosine", "onecycle", "plateau", "inverse_time")


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def make_optimizer(
    name: str,
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam, AdamW (decoupled decay) or RMSprop.

    ``weight_decay`` is L2 added to the gradient for sgd / adam / rmsprop (what
    a Keras ``kernel_regularizer=l2(w/2)`` does) and decoupled for adamw.
    """
    key = name.lower()
    if key not in OPTIMIZERS:
        raise CnnlabError(f"unknown optimizer {name!r}", where="optimizer.name", fix=f"use one of {', '.join(OPTIMIZERS)}")
    if not lr > 0:
        raise CnnlabError(f"learning rate {lr} is not positive", where="optimizer.lr", fix="use a value such as 0.01")
    if momentum < 0 or weight_decay < 0:
        raise CnnlabError("momentum and weight_decay must be >= 0", where="optimizer", fix="use 0.9 / 1e-4 for example")
    if nesterov and (key != "sgd" or momentum <= 0):
        raise CnnlabError("nesterov needs the sgd optimizer with momentum > 0", where="optimizer.nesterov",
                          fix="set optimizer sgd and momentum 0.9, or drop nesterov")
    params = list(params)
    if not params:
        raise CnnlabError("the model has no trainable parameter (every layer is frozen)", where="model",
                          fix="unfreeze at least the head (trainable: true)")
    # foreach=True: one multi-tensor kernel per update term instead of a Python loop over the
    # parameters; torch picks it on CUDA only, but it is as exact on the CPU (bit-identical
    # weights) and saves ~10 us a step there, which shows on small nets at small batches.
    if key == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                               foreach=True)
    if key == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)
    if key == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)
    # Keras's RMSprop: rho 0.9, epsilon 1e-7; torch's alpha is Keras's rho.
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7, momentum=momentum, weight_decay=weight_decay,
                               foreach=True)


class Schedule:
    """A torch LR scheduler plus when it steps: ``'step'`` (each batch) or ``'epoch'``."""

    def __init__(self, name: str, scheduler: Any, interval: str, monitor: str | None = None) -> None:
        self.name, self.scheduler, self.interval, self.monitor = name, scheduler, interval, monitor

    def after_step(self) -> None:
        if self.interval == "step" and self.scheduler is not None:
            self.scheduler.step()

    def after_epoch(self, logs: dict[str, float]) -> None:
        if self.interval != "epoch" or self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if self.monitor not in logs:
                raise CnnlabError(f"the plateau schedule monitors {self.monitor!r}, which this run does not log",
                                  where="schedule.monitor", fix=f"use one of {', '.join(logs)}")
            self.scheduler.step(logs[self.monitor])
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)


def make_schedule(
    name: str,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    step_size: int = 10,
    gamma: float = 0.1,
    eta_min: float = 0.0,
    pct_start: float = 0.3,
    factor: float = 0.1,
    patience: int = 5,
    monitor: str = "val_loss",
    interval: str | None = None,
    decay: float = 0.0,
) -> Schedule:
    """Build the schedule ``name`` (see the table in the module doc)."""
    key = name.lower()
    if key not in SCHEDULES:
        raise CnnlabError(f"unknown schedule {name!r}", where="schedule.name", fix=f"use one of {', '.join(SCHEDULES)}")
    if interval not in (None, "step", "epoch"):
        raise CnnlabError(f"interval {interval!r} is not 'step' or 'epoch'", where="schedule.interval",
                          fix="use 'step' or 'epoch'")
    sched = torch.optim.lr_scheduler
    if key == "constant":
        return Schedule(key, None, "epoch")
    if key == "step":
        return Schedule(key, sched.StepLR(optimizer, step_size=step_size, gamma=gamma), interval or "epoch")
    if key == "exponential":
        return Schedule(key, sched.ExponentialLR(optimizer, gamma=gamma), interval or "epoch")
    if key == "plateau":
        mode = "max" if "acc" in monitor else "min"
        return Schedule(key, sched.ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience),
                        "epoch", monitor)
    per = interval or "step"
    if key == "inverse_time":  # a closure over a float: LambdaLR's state_dict stays plain numbers
        return Schedule(key, sched.LambdaLR(optimizer, lambda t, d=float(decay): 1.0 / (1.0 + d * t)), per)
    total = max(1, epochs * steps_per_epoch if per == "step" else epochs)
    if key == "cosine":
        return Schedule(key, sched.CosineAnnealingLR(optimizer, T_max=total, eta_min=eta_min), per)
    max_lr = [group["lr"] for group in optimizer.param_groups]
    return Schedule(key, sched.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total, pct_start=pct_start), per)
