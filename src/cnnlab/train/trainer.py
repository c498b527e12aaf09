"""The training loop: epochs of steps, validation, callbacks, checkpoints, resume.

The step loop does no per-sample Python work and never waits for the device:
the loss and metrics are summed on the device (:class:`MetricTracker`) and read
once per epoch (and by the progress bar every half second at most). Image
models run with channels-last weights and inputs on every device (on this
project's 2-core CPU oneDNN's channels-last convolutions and poolings train the
zoo's nets 10-40% faster than NCHW; see benchmarks/RESULTS.md). By default
(``mixed_precision=None``) it trains under bf16 autocast on CUDA and on CPUs that
multiply bf16 in hardware (AVX-512 BF16, AMX), fp32 elsewhere; evaluation of a saved
bundle is always fp32. ``compile=True`` wraps the model in ``torch.compile``.

Nothing is lost: every ``checkpoint_every`` steps and at every epoch end the
whole state (weights, optimiser, schedule, callbacks, metric sums, history,
RNG states, position) is written atomically (:mod:`cnnlab.train.state`).
``fit(..., resume=True)`` continues from the newest good state and, on the CPU,
ends with the same weights and history as a run never interrupted.

Several processes (``world``, see :mod:`cnnlab.train.distributed`): the model is
wrapped in DistributedDataParallel, each rank trains on its shard of every global
batch with its loss weighted by its share of the batch, the epoch's sums are
all-reduced, and only rank 0 prints and writes (bundle, best, history, states);
a state holds every rank's RNG and metric sums, so ``--resume`` with the same
number of processes carries on exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from cnnlab.errors import CnnlabError, shorten
from cnnlab.train import distributed
from cnnlab.train import state as ckpt
from cnnlab.inference.bundle import save_bundle
from cnnlab.train.callbacks import Callback, TerminateOnNaN
from cnnlab.inference.head import OutputHead, find_output_head
from cnnlab.train.metrics import MetricTracker
from cnnlab.train.compiling import compile_model
from cnnlab.train.optim import Schedule
from cnnlab.train.progress import EpochProgress


class Loader(Protocol):
    def __iter__(self) -> Any: ...

    def __len__(self) -> int: ...


@functools.cache
def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True where the CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX, read from
    /proc/cpuinfo): there oneDNN's bf16 convolutions run ~1.4-2x its fp32 ones. Elsewhere
    (or where there is no /proc/cpuinfo) bf16 is emulated and slower, so ``auto`` stays fp32."""
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def auto_mixed_precision(device: torch.device) -> bool:
    """What ``precision: auto`` means: bf16 autocast on CUDA and on CPUs with native bf16."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


def uses_bf16(mixed_precision: bool | None, device: torch.device) -> bool:
    """``Trainer(mixed_precision=...)`` resolved: None means :func:`auto_mixed_precision`."""
    return auto_mixed_precision(device) if mixed_precision is None else mixed_precision


DEVICES = "auto, cpu, cuda, cuda:N (N = 0 .. GPUs - 1) or mps"


def resolve_device(device: str | torch.device | None = "auto", *, where: str = "device") -> torch.device:
    """``auto`` (CUDA when there is a GPU, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``,
    checked against what this machine and this torch build have; anything else is one
    clear error naming ``where`` and the valid values."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        text = str(device)
    elif isinstance(device, str):
        text = device.strip().lower()
    else:
        raise CnnlabError(f"must be a device name, got {device!r}", where=where, fix=f"use {DEVICES}")
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise CnnlabError(f"unknown device {shorten(repr(device), 60)}", where=where, fix=f"use {DEVICES}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise CnnlabError(f"CUDA is not available ({why})", where=where,
                              fix="use --device cpu (or auto), or run on a machine with a GPU and a CUDA build of torch")
        if index and int(index) >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise CnnlabError(f"there is no GPU {index}: this machine has {count} (cuda:0 .. cuda:{count - 1})",
                              where=where, fix=f"use cuda:0 .. cuda:{count - 1}, or cuda / auto")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CnnlabError("Apple's MPS is not available here", where=where, fix="use --device cpu (or auto)")
    return torch.device(text)


class Trainer:
    """Train ``model`` with ``loss_fn`` (on logits, see :mod:`cnnlab.train.losses`).

    ``bundle_meta`` is what :func:`cnnlab.inference.bundle.save_bundle` writes into
    ``model.json`` (architecture, task, classes, input shape, preprocessing);
    the trainer adds the output head and the last metrics. ``regularization``
    returns the model's extra loss (the spec's kernel regularisers).
    ``world`` (from :func:`cnnlab.train.distributed.init`) makes it one rank of a
    DDP job; ``sync_bn`` converts batch norm to SyncBatchNorm there (CUDA only).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        optimizer: torch.optim.Optimizer,
        *,
        schedule: Schedule | None = None,
        metrics: Sequence[str] = ("accuracy",),
        callbacks: Iterable[Callback] = (),
        device: str | torch.device = "auto",
        run_dir: str | Path | None = None,
        checkpoint_every: int = 0,
        verbose: int = 1,
        regularization: Callable[[nn.Module], torch.Tensor | float | None] | None = None,
        task: str = "classification",
        bundle_meta: Mapping[str, Any] | None = None,
        extra_state: Mapping[str, Any] | None = None,
        compile: bool = False,
        mixed_precision: bool | None = None,
        channels_last: bool = True,
        console: Any = None,
        world: distributed.World | None = None,
        sync_bn: bool = False,
    ) -> None:
        self.world = world or distributed.World()
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.cuda = self.device.type == "cuda"
        self.channels_last = channels_last
        if sync_bn:
            distributed.check_sync_bn(self.device)  # refused on the CPU, with the reason
            if self.world.distributed:  # with one process plain batch norm is the same thing
                self.model = distributed.convert_sync_batchnorm(self.model, self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.loss_fn, self.optimizer, self.schedule = loss_fn, optimizer, schedule
        self.metric_names = list(metrics)
        self.callbacks = list(callbacks)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint_every = int(checkpoint_every)
        self.verbose = verbose if self.world.is_main else 0  # only rank 0 prints
        self.regularization = regularization
        self.task = task
        self.bundle_meta = dict(bundle_meta or {})
        self.extra_state = dict(extra_state or {})
        self.mixed_precision = uses_bf16(mixed_precision, self.device)
        self.console = console
        # self.model stays the bare module (its state dict is the bundle's); training runs through DDP.
        trained: nn.Module = distributed.wrap(self.model, self.world, self.device) if self.world.distributed \
            else self.model
        # compile=True: Inductor (off by default: on the CPU it measured slower, see cnnlab.train.compiling).
        self.forward_model: nn.Module = compile_model(trained, self.device, self.say) if compile else trained
        # Evaluation bypasses DDP: its forward would run collectives, and shards may differ in batch counts.
        self.eval_model: nn.Module = self.model if self.world.distributed else self.forward_model
        self.history: list[dict[str, float]] = []
        self.stop_training = False
        self.epoch = 0  # epochs finished
        self.step = 0  # steps done in the current epoch
        self.global_step = 0
        self.head: OutputHead | None = None
        self._epoch_rng: dict[str, Any] | None = None
        self.train_tracker = MetricTracker(self.metric_names, self.device)

    # ---------------------------------------------------------------- output

    @property
    def is_main(self) -> bool:
        """Whether this process writes files (rank 0, or the only process)."""
        return self.world.is_main

    def say(self, text: str) -> None:
        if self.verbose:
            if self.console is not None:
                self.console.print(text, highlight=False)
            else:
                print(text)

    def save_bundle(self, folder: str | Path, logs: Mapping[str, float] | None = None) -> Path:
        """Save the current weights as a bundle (``model.json`` + ``weights.safetensors``)."""
        if self.head is None:
            raise CnnlabError("the model's output head is not known yet", where="Trainer.save_bundle",
                              fix="call fit() first (or set trainer.head = find_output_head(model, x))")
        if not self.is_main:
            return Path(folder)
        meta = dict(self.bundle_meta)
        meta["task"] = self.task
        meta["output"] = {"activation": self.head.activation, "in_model": self.head.module is not None,
                          "units": self.head.units}
        meta["metrics"] = dict(logs) if logs else (self.history[-1] if self.history else {})
        meta["epochs_trained"] = self.epoch
        return save_bundle(folder, self.model, meta)

    # ------------------------------------------------------------- one step

    def _autocast(self) -> Any:
        if self.mixed_precision:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(outputs, y)
        if self.regularization is not None:
            extra = self.regularization(self.model)
            if extra is not None:
                loss = loss + extra
        return loss

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, share: float = 1.0) -> None:
        """One optimiser step; ``share`` = ``m_r * W / m``, this rank's part of the global batch
        (1 for one process and for full batches: see :mod:`cnnlab.train.distributed`)."""
        with self._autocast():
            outputs = self.forward_model(x)
        if x.shape[0] == 0:
            # An empty last shard: zero gradients, but the backward (and DDP's all-reduce) still runs.
            loss = None
            objective = outputs.float().sum() * 0.0
        else:
            loss = self._loss(outputs.float(), y)
            objective = loss * share if share != 1.0 else loss
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.after_step()
        if loss is not None:
            self.train_tracker.update(loss, outputs, y)

    def _share(self, loader: Loader, batch_index: int, samples: int) -> float:
        if not self.world.distributed:
            return 1.0
        total = loader.global_batch_size(batch_index)  # type: ignore[attr-defined]
        return samples * self.world.world_size / total

    def _epoch_logs(self, tracker: MetricTracker, prefix: str = "") -> dict[str, float]:
        """The epoch's means over every rank's samples (one all-reduce of sums and counts)."""
        if not self.world.distributed:
            return tracker.compute(prefix)
        return tracker.reduced(lambda sums: distributed.all_reduce_sum(sums, self.world), prefix)

    @torch.no_grad()
    def evaluate(self, loader: Loader, prefix: str = "") -> dict[str, float]:
        """Loss and metrics of the model on ``loader`` (eval mode, on logits)."""
        if self.head is None:
            self._find_head(loader)
        tracker = MetricTracker(self.metric_names, self.device)
        was_training = self.model.training
        self.model.eval()
        # Several processes: each evaluates its shard with rank 0's moving statistics.
        distributed.broadcast_buffers(self.model, self.world)
        try:
            with self.head.logits():
                for x, y in loader:
                    if x.shape[0] == 0:
                        continue
                    x, y = self._to_device(x, y)
                    with self._autocast():
                        outputs = self.eval_model(x)
                    tracker.update(self._loss(outputs.float(), y), outputs, y)
        finally:
            self.model.train(was_training)
        return self._epoch_logs(tracker, prefix)

    # ------------------------------------------------------------ the loop

    def fit(self, train: Loader, val: Loader | None = None, *, epochs: int, resume: bool = False) -> list[dict[str, float]]:
        """Train until ``epochs`` epochs are done (or a callback stops); returns the history."""
        self._check_sharded(train, val)
        self.world.training = True
        if self.head is None:
            self._find_head(train)
        if resume:
            self._restore()
        for callback in self.callbacks:
            callback.on_train_begin(self)
        terminate_on_nan = any(isinstance(c, TerminateOnNaN) for c in self.callbacks)
        steps = len(train)
        self.model.train()
        with self.head.logits():
            try:
                while self.epoch < epochs and not self.stop_training:
                    logs = self._run_epoch(train, val, epochs, steps, terminate_on_nan)
                    if logs is None:
                        break
            except Exception as error:
                if self.world.distributed and distributed.is_comm_error(error):
                    where = f"epoch {self.epoch + 1}, step {self.step}"
                    raise distributed.rank_failure(self.world, error, where) from None
                raise
        for callback in self.callbacks:
            callback.on_train_end(self)
        if self.run_dir is not None:
            self.save_bundle(self.run_dir)
        return self.history

    def _check_sharded(self, train: Loader, val: Loader | None) -> None:
        for name, loader in (("training", train), ("validation", val)):
            if loader is None:
                continue
            size = getattr(loader, "world_size", 1)
            if size != self.world.world_size or getattr(loader, "rank", 0) != self.world.rank:
                raise CnnlabError(f"the {name} loader is sharded for {size} process(es), the run has "
                                  f"{self.world.world_size}", where=f"{name} loader",
                                  fix="give cnnlab.data.BatchLoader(rank=world.rank, world_size=world.world_size)")
        if self.world.distributed and not hasattr(train, "global_batch_size"):
            raise CnnlabError("a distributed run needs a loader that knows the global batch", where="training loader",
                              fix="use cnnlab.data.BatchLoader")

    def _find_head(self, train: Loader) -> None:
        _set_epoch(train, 0)
        x, _ = next(iter(train))
        x, _ = self._to_device(x[:2], x[:2])
        self.head = find_output_head(self.model, x).for_task(self.task)

    def _batches(self, loader: Loader, epoch: int, start: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        if hasattr(loader, "iter_epoch"):  # cnnlab.data.BatchLoader: jumps to a batch without computing the others
            if start:
                ckpt.set_rng_state(self._resume_rng)
            return loader.iter_epoch(epoch, start)
        _set_epoch(loader, epoch)
        batches = iter(loader)
        if start:
            # Skip what was done before the checkpoint, then put back the RNG
            # as it was there: dropout and augmentation carry on identically.
            if self._epoch_rng is not None:
                ckpt.set_rng_state(self._epoch_rng)
            batches = _skip_then(batches, start, ckpt.set_rng_state, self._resume_rng)
        return batches

    def _run_epoch(self, train: Loader, val: Loader | None, epochs: int, steps: int,
                   terminate_on_nan: bool) -> dict[str, float] | None:
        if self.step == 0:
            self._epoch_rng = ckpt.rng_state()
            self.train_tracker.reset()
        progress = EpochProgress(self.verbose, self.epoch, epochs, steps, console=self.console)
        closed_logs: dict[str, float] | None = None
        try:
            for x, y in self._batches(train, self.epoch, self.step):
                x, y = self._to_device(x, y)
                share = self._share(train, self.step, x.shape[0])
                self._train_step(x, y, share)
                # the bar counts the global batch: every rank's images
                images = x.shape[0] if not self.world.distributed else train.global_batch_size(self.step)  # type: ignore[attr-defined]
                self.step += 1
                self.global_step += 1
                progress.update(self.step, images, self.train_tracker.compute)
                if self.checkpoint_every and self.global_step % self.checkpoint_every == 0:
                    if terminate_on_nan and not math.isfinite(self._epoch_logs(self.train_tracker)["loss"]):
                        self.stop_training = True
                        self.say(f"TerminateOnNaN: loss is not finite at step {self.global_step}; stopping")
                        return None
                    self._checkpoint(epoch_done=False)
            logs = self._epoch_logs(self.train_tracker)
            if val is not None:
                logs.update(self.evaluate(val, prefix="val_"))
            logs["learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
            self.history.append(logs)
            closed_logs = logs
        finally:
            progress.close(closed_logs)
        for callback in self.callbacks:
            callback.on_epoch_end(self, self.epoch, logs)
        if self.schedule is not None:
            self.schedule.after_epoch(logs)
        self.epoch += 1
        self.step = 0
        self._checkpoint(epoch_done=True)
        return logs

    # ------------------------------------------------------- state, resume

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else {},
            "callbacks": [{"type": type(c).__name__, "state": c.state_dict()} for c in self.callbacks],
            "tracker": self.train_tracker.state_dict(),
            "history": [dict(row) for row in self.history],
            "rng": ckpt.rng_state(),
            "epoch_rng": self._epoch_rng,
            "epoch": self.epoch,
            "step": self.step,
            "global_step": self.global_step,
            "stop_training": self.stop_training,
            "extra": self.extra_state,
            "world_size": self.world.world_size,
        }

    def _rank_state(self) -> dict[str, Any]:
        """What differs between ranks: RNG states and this rank's metric sums."""
        return {"tracker": self.train_tracker.state_dict(), "rng": ckpt.rng_state(), "epoch_rng": self._epoch_rng}

    def _checkpoint(self, *, epoch_done: bool) -> None:
        if self.run_dir is None:
            return
        # Every rank's part goes to rank 0, which alone writes the state.
        ranks = distributed.all_gather_objects(self._rank_state(), self.world) if self.world.distributed else None
        if not self.is_main:
            return
        state = self.state_dict()
        if ranks is not None:
            state["ranks"] = ranks
        ckpt.save_state(self.run_dir, state, global_step=self.global_step, epoch_done=epoch_done)

    def _restore(self) -> None:
        if self.run_dir is None:
            raise CnnlabError("resume needs the run folder the states are saved in", where="Trainer(run_dir=...)",
                              fix="pass run_dir= the folder of the run to continue")
        if self.is_main:  # the others only read
            ckpt.remove_stale_temporaries(self.run_dir)
        state, path = ckpt.load_latest_state(self.run_dir, notice=lambda text: self.say(f"notice: {text}"))
        try:
            self.load_state_dict(state, where=str(path))
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            raise CnnlabError(f"the saved state does not fit this model, optimiser or callbacks "
                              f"({shorten(str(error), 160)})", where=str(path),
                              fix="resume with the run's own settings, or start a new run with another --out") from None
        self.say(f"resuming from {path.name}: epoch {self.epoch + 1}, step {self.step}")

    def load_state_dict(self, state: dict[str, Any], where: str = "state") -> None:
        saved_world = int(state.get("world_size", 1))
        if saved_world != self.world.world_size:
            def how(n: int) -> str:
                return "one process" if n == 1 else f"{n} processes"
            raise CnnlabError(f"the run was trained by {how(saved_world)}; this one has "
                              f"{how(self.world.world_size)}", where=where,
                              fix=f"resume it with {how(saved_world)} (`cnnlab train --resume RUN"
                                  f"{f' --nproc {saved_world}' if saved_world > 1 else ''}`, or torchrun with "
                                  f"{saved_world} in all), or start a new run")
        if "ranks" in state:  # this rank's own RNG and metric sums
            state = {**state, **state["ranks"][self.world.rank]}
        for callback in self.callbacks:  # e.g. transfer.Unfreeze: the optimiser's groups as they were saved
            before = getattr(callback, "before_restore", None)
            if before is not None:
                before(self, state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        saved = state["callbacks"]
        if [s["type"] for s in saved] != [type(c).__name__ for c in self.callbacks]:
            raise ValueError("the callbacks differ from those of the saved run")
        for callback, entry in zip(self.callbacks, saved):
            callback.load_state_dict(entry["state"])
        self.train_tracker.load_state_dict(state["tracker"])
        self.history = [dict(row) for row in state["history"]]
        self.epoch, self.step, self.global_step = state["epoch"], state["step"], state["global_step"]
        self.stop_training = state["stop_training"]
        self._epoch_rng = state["epoch_rng"]
        self._resume_rng = state["rng"]
        if self.step == 0:
            ckpt.set_rng_state(state["rng"])


def _set_epoch(loader: Any, epoch: int) -> None:
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)


def _skip_then(batches: Iterable[Any], count: int, action: Callable[[Any], None], arg: Any) -> Iterable[Any]:
    """Pull and drop ``count`` batches, call ``action(arg)``, then yield the rest (lazily)."""
    iterator = iter(batches)
    for _ in range(count):
        if next(iterator, None) is None:
            break
    action(arg)
    yield from iterator
