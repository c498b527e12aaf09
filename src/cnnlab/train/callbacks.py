"""Callbacks with Keras's names and meanings.

Each callback sees the trainer at the end of every epoch (``logs`` holds the
epoch's ``loss``, metrics, ``val_*`` and ``lr``) and may set
``trainer.stop_training``. Each has ``state_dict`` / ``load_state_dict`` (plain
Python values and tensors, loadable with ``weights_only=True``) so a resumed
run carries on with the same best value and patience counters.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text



class Trainer(Protocol):
    """What callbacks use of the trainer (the trainer module imports this one, not the reverse)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    run_dir: Path | None
    history: list[dict[str, float]]
    stop_training: bool
    is_main: bool  # False on ranks > 0 of a distributed run: they write nothing

    def save_bundle(self, folder: str | Path, logs: Mapping[str, float] | None = None) -> Path: ...

    def say(self, text: str) -> None: ...


def _mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise CnnlabError(f"mode {mode!r} is not auto, min or max", where="callbacks.mode", fix="use 'auto'")
    if mode == "auto":  # Keras: metrics with 'acc' in the name grow, everything else shrinks
        return "max" if "acc" in monitor else "min"
    return mode


class Callback:
    """Base class: override the hooks you need."""

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class _Monitor:
    """Best-value bookkeeping shared by checkpoint, early stopping."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        self.monitor = monitor
        self.mode = _mode(monitor, mode)
        self.min_delta = abs(min_delta)
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs: dict[str, float]) -> float | None:
        if self.monitor not in logs:
            warnings.warn(f"{type(self).__name__}: monitor {self.monitor!r} is not logged "
                          f"(available: {', '.join(logs)})", stacklevel=3)
            return None
        return logs[self.monitor]

    def improves(self, current: float) -> bool:
        if self.mode == "min":
            return current + self.min_delta < self.best
        return current - self.min_delta > self.best


class ModelCheckpoint(Callback, _Monitor):
    """Save a bundle at the end of an epoch; with ``save_best_only`` only when ``monitor`` improves.

    ``filepath`` may use Keras's placeholders, ``{epoch:02d}`` and any logged
    value (``{val_accuracy:.3f}``); relative paths are under the run folder.
    The default is ``best`` (with ``save_best_only``) or ``epoch-{epoch:03d}``.
    """

    def __init__(self, filepath: str | None = None, monitor: str = "val_loss", mode: str = "auto",
                 save_best_only: bool = False) -> None:
        _Monitor.__init__(self, monitor, mode)
        self.filepath = filepath or ("best" if save_best_only else "epoch-{epoch:03d}")
        self.save_best_only = save_best_only
        self.last_saved: str | None = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only:
            current = self.value(logs)
            if current is None or not self.improves(current):
                return
            self.best = current
        try:
            name = self.filepath.format(epoch=epoch + 1, **logs)  # Keras numbers epochs from 1 in names
        except (KeyError, ValueError, IndexError) as error:
            raise CnnlabError(f"ModelCheckpoint filepath {self.filepath!r} cannot be formatted ({error})",
                              where="callbacks.model_checkpoint.filepath",
                              fix="use {epoch:02d} and logged names such as {val_loss:.3f}") from None
        path = Path(name)
        if not path.is_absolute() and trainer.run_dir is not None:
            path = trainer.run_dir / path
        trainer.save_bundle(path, logs)
        self.last_saved = str(path)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "last_saved": self.last_saved}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.last_saved = state["best"], state["last_saved"]


class EarlyStopping(Callback, _Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the weights of the best epoch are put back when
    it stops (Keras's behaviour: only on an early stop).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0, mode: str = "auto",
                 restore_best_weights: bool = False) -> None:
        _Monitor.__init__(self, monitor, mode, min_delta)
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.best_epoch = -1
        self.stopped_epoch = -1
        self.best_weights: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        current = self.value(logs)
        if current is None:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _copy_weights(trainer.model)  # Keras keeps the first epoch's as a fallback
        self.wait += 1
        if self.improves(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = _copy_weights(trainer.model)
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            trainer.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                trainer.model.load_state_dict(self.best_weights)
                trainer.say(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1}")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait, self.best_epoch = state["best"], state["wait"], state["best_epoch"]
        self.stopped_epoch, self.best_weights = state["stopped_epoch"], state["best_weights"]


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls ``patience`` epochs (Keras defaults)."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, mode: str = "auto",
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0) -> None:
        if not 0 < factor < 1:
            raise CnnlabError(f"factor {factor} is not in (0, 1)", where="callbacks.reduce_lr_on_plateau.factor",
                              fix="use 0.1 or 0.5")
        self.monitor, self.mode = monitor, _mode(monitor, mode)
        self.kwargs = dict(factor=factor, patience=patience, threshold=min_delta, threshold_mode="abs",
                           cooldown=cooldown, min_lr=min_lr)
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._pending: dict[str, Any] | None = None

    def on_train_begin(self, trainer: Trainer) -> None:
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(trainer.optimizer, mode=self.mode, **self.kwargs)
        if self._pending is not None:
            self.plateau.load_state_dict(self._pending)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if self.monitor not in logs:
            warnings.warn(f"ReduceLROnPlateau: monitor {self.monitor!r} is not logged", stacklevel=2)
            return
        assert self.plateau is not None
        self.plateau.step(logs[self.monitor])

    def state_dict(self) -> dict[str, Any]:
        return {} if self.plateau is None else self.plateau.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self._pending = state
            if self.plateau is not None:
                self.plateau.load_state_dict(state)


class CSVLogger(Callback):
    """Write the history as CSV (``epoch`` from 0, then the logged values), rewritten whole each epoch.

    Rewriting (atomically) instead of appending means a run killed between two
    writes and resumed never holds a row twice.
    """

    def __init__(self, filename: str = "history.csv", separator: str = ",") -> None:
        self.filename, self.separator = filename, separator

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if not trainer.is_main:  # several processes: rank 0 writes the (all-reduced) history
            return
        path = Path(self.filename)
        if not path.is_absolute() and trainer.run_dir is not None:
            path = trainer.run_dir / path
        atomic_write_text(path, history_csv(trainer.history, self.separator))


def history_csv(history: list[dict[str, float]], separator: str = ",") -> str:
    """The history (one dict per epoch) as CSV text with a header; floats in repr (round-trip) form."""
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator="\n")
    writer.writerow(["epoch", *keys])
    for epoch, row in enumerate(history):
        writer.writerow([epoch, *(repr(row[k]) if k in row else "" for k in keys)])
    return buffer.getvalue()


class TerminateOnNaN(Callback):
    """Stop as soon as the loss is NaN or infinite (checked whenever the trainer reads the loss)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        if not math.isfinite(logs.get("loss", 0.0)):
            trainer.stop_training = True
            trainer.say(f"TerminateOnNaN: loss is {logs['loss']} at epoch {epoch + 1}; stopping")


def _copy_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


class ExponentialMovingAverage(Callback):
    """An exponential moving average of the weights (Keras 3's ``use_ema`` / ``ema_momentum`` /
    ``ema_overwrite_frequency``), and with ``overwrite_frequency`` airbench's lookahead.

    Every ``every`` optimiser steps: ``average = m * average + (1 - m) * weights``
    for every floating tensor of ``model.state_dict()`` (parameters and the BN
    running statistics; integer counters are left alone), where ``m`` is
    ``momentum``, or ``momentum(step)`` for a callable, ``step`` counting
    optimiser steps from 1. The average starts as the weights at the start of
    training. With ``overwrite_frequency`` k, after every k-th update the model's
    weights are set to the average (``every=5, overwrite_frequency=1`` with
    ``m = 0.95**5 * (step / total)**3`` is airbench94's lookahead). When
    training ends the model's weights become the average (Keras's
    ``finalize_variable_values``), so the saved bundle holds it.

    It runs in the optimiser's step post-hook (``register_step_post_hook``), so
    the trainer's loop is unchanged; the average and the step count are in
    :meth:`state_dict`, and a resumed run carries on with them.
    """

    def __init__(self, momentum: float | Callable[[int], float] = 0.99, every: int = 1,
                 overwrite_frequency: int | None = None) -> None:
        if not callable(momentum) and not 0.0 <= momentum < 1.0:
            raise CnnlabError(f"momentum {momentum} is not in [0, 1)", where="callbacks.exponential_moving_average.momentum",
                              fix="use 0.99 or 0.999")
        if every < 1 or (overwrite_frequency is not None and overwrite_frequency < 1):
            raise CnnlabError("every and overwrite_frequency must be >= 1",
                              where="callbacks.exponential_moving_average", fix="use every=1, overwrite_frequency=None")
        self.momentum, self.every, self.overwrite_frequency = momentum, int(every), overwrite_frequency
        self.steps = 0
        self.updates = 0
        self.average: dict[str, torch.Tensor] | None = None
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._hook: Any = None

    def on_train_begin(self, trainer: Trainer) -> None:
        weights = {k: v for k, v in trainer.model.state_dict().items() if v.is_floating_point()}
        if self.average is None:  # fresh run; a resumed one keeps the loaded average
            self.average = {k: v.detach().clone() for k, v in weights.items()}
        else:
            self.average = {k: self.average[k].to(v.device, v.dtype) for k, v in weights.items()}
        self._pairs = [(self.average[k], v) for k, v in weights.items()]
        self._hook = trainer.optimizer.register_step_post_hook(lambda *_: self._after_step())

    @torch.no_grad()
    def _after_step(self) -> None:
        self.steps += 1
        if self.steps % self.every:
            return
        m = float(self.momentum(self.steps) if callable(self.momentum) else self.momentum)
        for average, weight in self._pairs:
            average.lerp_(weight, 1.0 - m)  # a + (1 - m) (w - a)
        self.updates += 1
        if self.overwrite_frequency and self.updates % self.overwrite_frequency == 0:
            for average, weight in self._pairs:
                weight.copy_(average)

    def on_train_end(self, trainer: Trainer) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        with torch.no_grad():
            for average, weight in self._pairs:
                weight.copy_(average)

    def state_dict(self) -> dict[str, Any]:
        average = None if self.average is None else {k: v.detach().cpu().clone() for k, v in self.average.items()}
        return {"steps": self.steps, "updates": self.updates, "average": average}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.updates, self.average = state["steps"], state["updates"], state["average"]
