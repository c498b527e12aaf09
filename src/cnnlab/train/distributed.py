"""Training on several processes: PyTorch DDP, started by ``torchrun`` (torch's elastic launcher).

One cnnlab process runs per rank. ``torchrun`` (or ``cnnlab train --nproc N``,
which calls the same launcher in-process) sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init` reads them,
picks the device (``cuda:LOCAL_RANK`` with NCCL on CUDA, the CPU with gloo) and
joins the process group. Without those variables (or with ``WORLD_SIZE=1``)
everything here is a no-op and the trainer runs as one plain process.

How a distributed epoch equals a single-process one (the trainer's contract):

- Data: rank ``r`` of ``W`` takes positions ``r, r + W, r + 2W, ...`` of the
  epoch's global order (:class:`cnnlab.data.BatchLoader` with ``rank`` /
  ``world_size``), so with a per-rank batch ``B`` the ranks' batch ``b``
  together are exactly the single-process batch ``b`` of size ``W * B``. Every
  rank runs the same number of steps; when the last global batch holds ``m < W``
  samples, ranks ``r >= m`` run an empty batch (0 samples) so that DDP's
  all-reduces line up (no rank waits forever, nothing is padded or counted twice).
- Gradients: DDP averages the ranks' gradients, ``g = (1/W) sum_r g_r``. Rank
  ``r`` with ``m_r`` of the step's ``m`` samples scales its batch-mean loss by
  ``s_r = m_r * W / m``, so ``g = (1/m) sum_i grad l_i``: the gradient of the
  mean over the global batch, also for an uneven last batch (``s_r = 1`` for
  full batches). An empty rank backpropagates ``0 * sum(outputs)`` (zero gradients).
- Metrics: loss and metric sums and sample counts (float64) are all-reduced at
  the end of each epoch (:meth:`MetricTracker.reduced`), so the logged figures
  are those of the whole epoch; validation is sharded the same way.

Failures: ``torchrun``'s agent ends every worker as soon as one dies; the
collectives of the training group also time out after ``CNNLAB_DIST_TIMEOUT``
seconds (default 30), so a lost peer ends the job well within a minute, with a
one-line :class:`RankFailure` (or, when the launcher stops the process, a line
from the SIGTERM handler) instead of a hang.

From Python, under ``torchrun``::

    world = distributed.init(device)          # device = rank_device(device, world_size, local_rank)
    train = BatchLoader(data, 32, shuffle=True, device=device, rank=world.rank, world_size=world.world_size)
    Trainer(model, loss, optimizer, device=device, world=world, run_dir="runs/x").fit(train, epochs=5)
    distributed.shutdown(world)

(``cnnlab.fit`` and ``cnnlab train`` do all of this themselves.)
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError

TIMEOUT_ENV = "CNNLAB_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 30.0
# Joining the group waits for every rank to have loaded its data (the data sets are
# read, and their caches built, before the group starts): that may take minutes.
SETUP_TIMEOUT = timedelta(minutes=30)


class RankFailure(CnnlabError):
    """A process of a distributed run stopped or lost contact with the others."""


@dataclass
class World:
    """Where this process stands in the job: rank, world size, local rank, backend, group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    group: Any = None  # the process group of the training collectives (short timeout)
    training: bool = False  # set by the trainer: from then on a SIGTERM is worth a line
    reported: bool = False  # a RankFailure was raised: the SIGTERM that follows needs no second line

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that prints and writes files."""
        return self.rank == 0

    def describe(self) -> str:
        if not self.distributed:
            return "1 process"
        return f"{self.world_size} processes ({self.backend})"


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise CnnlabError(f"environment variable {name}={value!r} is not an integer", where=name,
                          fix="start the run with torchrun, which sets RANK, WORLD_SIZE and LOCAL_RANK") from None


def env_ranks() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside it."""
    world_size = _int_env("WORLD_SIZE", 1)
    rank, local_rank = _int_env("RANK", 0), _int_env("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise CnnlabError(f"RANK={rank}, WORLD_SIZE={world_size}, LOCAL_RANK={local_rank} do not make a job",
                          where="RANK / WORLD_SIZE", fix="start the run with torchrun, which sets them")
    return rank, world_size, local_rank


def under_launcher() -> bool:
    """True inside a process that torchrun (or ``cnnlab train --nproc``) started."""
    return "TORCHELASTIC_RUN_ID" in os.environ or _int_env("WORLD_SIZE", 1) > 1


def timeout() -> timedelta:
    """The training collectives' timeout: ``$CNNLAB_DIST_TIMEOUT`` seconds, default 30."""
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise CnnlabError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds", where=TIMEOUT_ENV,
                          fix="e.g. CNNLAB_DIST_TIMEOUT=30") from None
    if seconds <= 0:
        raise CnnlabError(f"{TIMEOUT_ENV}={text!r} must be positive", where=TIMEOUT_ENV, fix="e.g. 30")
    return timedelta(seconds=seconds)


def rank_device(device: torch.device, world_size: int, local_rank: int) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` (one GPU per local rank) or the CPU."""
    if world_size == 1:
        return device
    if device.type == "cuda":
        if device.index not in (None, local_rank):
            raise CnnlabError(f"--device {device} names one GPU, but each of the {world_size} processes uses "
                              "its own (cuda:LOCAL_RANK)", where="--device",
                              fix="give --device cuda (or auto); choose the GPUs with CUDA_VISIBLE_DEVICES")
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise CnnlabError(f"local rank {local_rank} has no GPU: this machine shows {count}", where="--nproc-per-node",
                              fix=f"start at most {count} processes per machine, or train on the CPU (--device cpu)")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if device.type != "cpu":
        raise CnnlabError(f"distributed training runs on CUDA (NCCL) or the CPU (gloo), not on {device.type}",
                          where="--device", fix="give --device cuda or --device cpu")
    return device


def init(device: torch.device) -> World:
    """Join the job's process group (a no-op for one process); call it once per process.

    ``device`` must already be :func:`rank_device`'s. NCCL on CUDA, gloo on the CPU;
    the default group (used once, to wait for every rank) has a long timeout, the
    training group :func:`timeout`.
    """
    rank, world_size, local_rank = env_ranks()
    if world_size == 1:
        return World()
    import torch.distributed as dist

    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise CnnlabError(f"{' and '.join(missing)} not set for a {world_size}-process run", where=missing[0],
                          fix="start the run with torchrun (or `cnnlab train --nproc N`), which sets them")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world_size,
                                timeout=SETUP_TIMEOUT)
    group = dist.new_group(backend=backend, timeout=timeout())
    world = World(rank, world_size, local_rank, backend, group)
    _install_sigterm_line(world)
    return world


def shutdown(world: World) -> None:
    """Leave the process group (after the last collective)."""
    if world.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def _install_sigterm_line(world: World) -> None:
    """torchrun's agent stops the surviving workers with SIGTERM when one fails: say so in one line."""
    def handler(signum: int, frame: Any) -> None:
        if not world.training or world.reported:  # another rank refused the input, or this one said why
            os._exit(128 + signal.SIGTERM)
        sys.stderr.write(f"error: rank {world.rank} of {world.world_size} stopped by the launcher (SIGTERM), "
                         "which ends every process when one fails; the last saved state is kept: continue "
                         "with `cnnlab train --resume RUN_FOLDER` and the same number of processes\n")
        sys.stderr.flush()
        os._exit(128 + signal.SIGTERM)  # no cleanup: a collective in flight would block it

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (an API user's worker thread): keep Python's default
        pass


def is_comm_error(error: BaseException) -> bool:
    """Whether ``error`` is a failed collective (a peer died, a timeout), not a bug of the run."""
    import torch.distributed as dist

    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(
        word in text for word in ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "socket"))


def rank_failure(world: World, error: BaseException, where: str) -> RankFailure:
    """A one-line :class:`RankFailure` for a rank whose peer died (gloo / NCCL's first line, its log prefix cut)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    first = re.sub(r"^\[[^\]]*\]\s*", "", first).split(". ")[0]  # gloo's "[file.cc:537] Read error ...: reset by peer."
    world.reported = True
    return RankFailure(f"rank {world.rank} of {world.world_size} lost the other processes ({first[:160]})",
                       where=where, fix="a process of the job died or hung; the last saved state is kept: continue "
                                        "with `--resume` and the same number of processes")


# ---------------------------------------------------------------------------- the model


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Batch norm layers -> :class:`torch.nn.SyncBatchNorm` (statistics over all ranks' batches).

    PyTorch's SyncBatchNorm runs on CUDA only (it refuses CPU tensors), so on
    the CPU this is refused. Frozen layers (cnnlab's ``BatchNorm.trainable =
    False``, which use their moving statistics) are left as they are.
    """
    check_sync_bn(device)
    from torch.nn.modules.batchnorm import _BatchNorm

    def convert(module: nn.Module) -> nn.Module:
        if isinstance(module, _BatchNorm) and getattr(module, "trainable", True):
            return nn.SyncBatchNorm.convert_sync_batchnorm(module)
        for name, child in module.named_children():
            new = convert(child)
            if new is not child:
                module.add_module(name, new)
        return module

    return convert(model)


def check_sync_bn(device: torch.device) -> None:
    """Refuse ``--sync-bn`` off CUDA."""
    if device.type != "cuda":
        raise CnnlabError("needs CUDA: PyTorch's SyncBatchNorm refuses CPU tensors", where="--sync-bn",
                          fix="drop --sync-bn on the CPU (each process then normalises with its own batch's "
                              "statistics), or train on GPUs")


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``model`` in :class:`torch.nn.parallel.DistributedDataParallel` (rank 0's weights everywhere)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None,
                                   process_group=world.group)


# --------------------------------------------------------------------------- collectives


def all_reduce_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The sum of ``tensor`` over the ranks (a copy; the input is left alone)."""
    if not world.distributed:
        return tensor
    import torch.distributed as dist

    total = tensor.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=world.group)
    return total


def all_gather_objects(value: Any, world: World) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order."""
    if not world.distributed:
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * world.world_size
    dist.all_gather_object(out, value, group=world.group)
    return out


def broadcast_buffers(model: nn.Module, world: World) -> None:
    """Give every rank rank 0's buffers (batch norm's moving statistics) before evaluating."""
    if not world.distributed:
        return
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, src=0, group=world.group)


# ------------------------------------------------------------------------------ errors


@contextmanager
def rank_errors() -> Iterator[None]:
    """A user error on rank r > 0 is printed as ``[rank r] ...``.

    Every rank checks the same input and usually fails the same way, but the
    launcher stops the others as soon as one exits, so each rank says it itself
    (rank 0 alone could be stopped before it got there).
    """
    try:
        yield
    except CnnlabError as error:
        rank = env_ranks()[0] if under_launcher() else 0
        if rank and error.args and not isinstance(error, RankFailure):
            error.args = (f"[rank {rank}] {error.args[0]}", *error.args[1:])
        raise


# ------------------------------------------------------------------------------ launcher


def launch(nproc: int, args: Sequence[str], *, run_hint: str | None = None) -> int:
    """Run ``python -m cnnlab ARGS`` as ``nproc`` processes on this machine with torch's launcher.

    The same as ``torchrun --standalone --nproc-per-node NPROC -m cnnlab ARGS``
    (torch.distributed.run, a c10d rendezvous on a free local port). Each process
    gets ``OMP_NUM_THREADS = cores // nproc`` unless it is set. Returns the exit status:
    0, 2 when the ranks refused the input (rank 0 printed why), else 1 with one line.
    """
    if nproc < 1:
        raise CnnlabError(f"--nproc {nproc} is not a number of processes", where="--nproc", fix="e.g. --nproc 2")
    # torch's launcher sets up every worker before starting any: 2**63 of them never returns. A sane
    # bound: 4 processes per core or GPU (CPU runs oversubscribed for testing stay possible).
    import torch

    limit = 4 * max(os.cpu_count() or 1, torch.cuda.device_count())
    if nproc > limit:
        raise CnnlabError(f"--nproc {nproc} is over the limit of {limit} (4 per core or GPU of this machine)",
                          where="--nproc", fix="use one process per GPU, or a few CPU processes, e.g. --nproc 2")
    if under_launcher():
        raise CnnlabError("--nproc inside a torchrun job", where="--nproc",
                          fix="give either torchrun's --nproc-per-node or cnnlab's --nproc, not both")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    parsed = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "cnnlab", *args])
    saved = os.environ.get("OMP_NUM_THREADS")
    if saved is None:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    try:
        run(parsed)
    except ChildFailedError as failed:
        stopped = (128 + signal.SIGTERM, -signal.SIGTERM)  # ended by the launcher because another failed
        codes = [f.exitcode for f in failed.failures.values()]
        if 2 in codes and all(code in (2, *stopped) for code in codes):
            return 2  # a user error: the ranks printed it
        parts = []
        for rank, failure in sorted(failed.failures.items()):
            if failure.exitcode in stopped:
                how = "stopped by the launcher"
            elif failure.exitcode < 0:
                how = f"killed by {failure.signal_name()}"
            else:
                how = f"exit status {failure.exitcode}"
            parts.append(f"rank {rank} {how}")
        hint = f"`cnnlab train --resume {run_hint} --nproc {nproc}`" if run_hint else \
            f"`cnnlab train --resume RUN_FOLDER --nproc {nproc}`"
        sys.stderr.write(f"error: the {nproc}-process run failed ({', '.join(parts)}); the last saved state "
                         f"is kept: continue it with {hint}\n")
        return 1
    except Exception as error:  # the launcher itself (rendezvous, ports): not a rank's failure
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CnnlabError(f"torch's launcher could not start {nproc} processes ({first[:200]})", where="--nproc",
                          fix="check that this machine may open local TCP ports, or start torchrun yourself") from None
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
    return 0
