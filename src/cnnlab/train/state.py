"""Training state for resume: written atomically, checked by sha256, loaded without unpickling code.

A state file is ``state/ckpt-<global step:09d>-<phase>.<sha256>.pt`` where
phase 0 is "in the middle of an epoch" and 1 is "epoch finished", so names
sort in training order. The sha256 of the file's bytes is in its own name: a
file cut short or damaged after the fact no longer matches, and the loader
falls back to the previous one with a warning. The newest ``keep`` files are
kept.

The payload is a dict of tensors and plain values (``torch.save``), read back
with ``torch.load(weights_only=True)``. RNG states are stored as tensors and
lists so that no numpy object needs unpickling.
"""

from __future__ import annotations

import hashlib
import io
import random
import re
import warnings
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from cnnlab.errors import CnnlabError, check_seed, shorten
from cnnlab.files import atomic_write_bytes

STATE_DIR = "state"
_NAME = re.compile(r"^ckpt-(\d{9})-([01])\.([0-9a-f]{64})\.pt$")


def rng_state() -> dict[str, Any]:
    """Torch (CPU and CUDA), numpy and Python RNG states, as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices); ``seed`` in 0 .. 2**32 - 1."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def state_files(run_dir: Path) -> list[Path]:
    """The run's state files, oldest first."""
    folder = Path(run_dir) / STATE_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def save_state(run_dir: Path, state: dict[str, Any], *, global_step: int, epoch_done: bool, keep: int = 3) -> Path:
    """Write ``state`` as the newest checkpoint and prune all but the newest ``keep``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path = Path(run_dir) / STATE_DIR / f"ckpt-{global_step:09d}-{int(epoch_done)}.{digest}.pt"
    atomic_write_bytes(path, data)
    for old in state_files(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_latest_state(run_dir: Path, notice: Callable[[str], None] | None = None) -> tuple[dict[str, Any], Path]:
    """The newest state whose bytes match their checksum; older ones are tried, with a notice.

    ``notice(text)`` is told of each state passed over (one line); default: a warning.
    """
    notice = notice or (lambda text: warnings.warn(text, stacklevel=3))
    run_dir = Path(run_dir)
    files = state_files(run_dir)
    if not files:
        raise CnnlabError(f"no training state in {run_dir / STATE_DIR}", where=str(run_dir),
                          fix="give the folder of a run that trained at least one checkpoint (--out of `cnnlab train`)")
    for path in reversed(files):
        expected = _NAME.match(path.name).group(3)  # type: ignore[union-attr]
        try:
            data = path.read_bytes()
        except OSError as error:
            notice(f"{path} cannot be read ({error.strerror or error}); using the previous state")
            continue
        if hashlib.sha256(data).hexdigest() != expected:
            notice(f"{path} is corrupted or half-written (checksum mismatch); using the previous state")
            continue
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True), path
        except Exception as error:  # a file with the right checksum that still does not load
            notice(f"{path} cannot be read ({shorten(str(error), 120)}); using the previous state")
    raise CnnlabError(f"every training state in {run_dir / STATE_DIR} is corrupted", where=str(run_dir),
                      fix="start the run again without --resume")


def remove_stale_temporaries(run_dir: Path) -> None:
    """Drop temporary files a killed write left in the state folder (our own folder only)."""
    folder = Path(run_dir) / STATE_DIR
    if folder.is_dir():
        for tmp in folder.glob(".ckpt-*.tmp"):
            tmp.unlink(missing_ok=True)
