"""Reading a run folder: its config, history, bundle metadata, split, states and session log.

A run folder is what ``cnnlab train --out`` writes (see :mod:`cnnlab.train.api`).
It is recognised by its ``config.yaml`` together with a ``history.csv``, a
``model.json`` or a ``state/`` folder; a run that crashed before its first
epoch ended has states but no history, one that crashed later has a history but
no final bundle. Nothing here imports the trainer: the files are the contract.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from cnnlab.errors import CnnlabError

CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.csv"
META_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
SPLIT_FILE = "split.json"
RUN_LOG = "run.json"
STATE_DIR = "state"
_STATE = re.compile(r"^ckpt-(\d{9})-([01])\.([0-9a-f]{64})\.pt$")


@dataclass
class Run:
    """What a run folder holds, read once."""

    path: Path
    config: dict[str, Any]
    config_text: str
    history: list[dict[str, float]]
    meta: dict[str, Any] | None  # the final bundle's model.json, None when the run did not finish
    best_meta: dict[str, Any] | None
    split: dict[str, Any] | None
    sessions: list[dict[str, Any]]
    states: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def finished(self) -> bool:
        return self.meta is not None and (self.path / WEIGHTS_FILE).is_file()

    @property
    def any_meta(self) -> dict[str, Any] | None:
        return self.meta or self.best_meta

    @property
    def columns(self) -> list[str]:
        keys: list[str] = []
        for row in self.history:
            keys.extend(k for k in row if k not in keys and k != "epoch")
        return keys

    def series(self, key: str) -> list[float]:
        return [row.get(key, math.nan) for row in self.history]

    @property
    def monitor(self) -> tuple[str, str]:
        """(metric, 'min'|'max') that picks the best epoch: the checkpoint's monitor, Keras's 'auto' mode."""
        callbacks = self.config.get("callbacks") or {}
        checkpoint = callbacks.get("model_checkpoint") or callbacks.get("early_stopping") or {}
        monitor = str(checkpoint.get("monitor") or "val_loss")
        if monitor not in self.columns:
            monitor = "val_loss" if "val_loss" in self.columns else "loss"
        mode = str(checkpoint.get("mode") or "auto")
        if mode not in ("min", "max"):
            mode = "max" if "acc" in monitor else "min"
        return monitor, mode

    @property
    def best_epoch(self) -> int | None:
        """Index (from 0) of the best epoch by :attr:`monitor`, None without a finite value."""
        monitor, mode = self.monitor
        values = [(v, i) for i, v in enumerate(self.series(monitor)) if isinstance(v, float) and math.isfinite(v)]
        if not values:
            return None
        if mode == "min":
            return min(values)[1]  # ties: the earliest epoch, as the checkpoint keeps it
        return max(values, key=lambda vi: (vi[0], -vi[1]))[1]

    def times(self) -> dict[str, Any]:
        """Start, end, duration (seconds), resumed, device and precision, from run.json (file times otherwise)."""
        if self.sessions:
            first, last = self.sessions[0], self.sessions[-1]
            seconds = [s.get("seconds") for s in self.sessions]
            return {"start": first.get("start"), "end": last.get("end"),
                    "seconds": sum(s for s in seconds if s) if any(seconds) else None,
                    "resumed": any(s.get("resumed") for s in self.sessions), "sessions": len(self.sessions),
                    "device": last.get("device"), "precision": last.get("precision"), "recorded": True}
        start = _mtime(self.path / CONFIG_FILE)
        end_file = self.path / META_FILE if (self.path / META_FILE).is_file() else self.path / HISTORY_FILE
        end = _mtime(end_file) if end_file.is_file() else None
        seconds = (end - start) if start is not None and end is not None else None
        iso = lambda t: datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds") if t else None  # noqa: E731
        return {"start": iso(start), "end": iso(end), "seconds": seconds, "resumed": None, "sessions": None,
                "device": None, "precision": (self.any_meta or {}).get("training_precision"), "recorded": False}

    def events(self) -> list[dict[str, Any]]:
        """Early stopping and learning-rate plateau reductions, read from the config and the history.

        Plateau: every epoch whose learning rate is below the one before, when the
        run used ReduceLROnPlateau or the 'plateau' schedule (other schedules move
        the rate every epoch by design). Early stopping: the run had EarlyStopping
        and logged fewer epochs than it was given.
        """
        out: list[dict[str, Any]] = []
        callbacks = self.config.get("callbacks") or {}
        plateau = callbacks.get("reduce_lr_on_plateau") is not None or (self.config.get("schedule") or {}).get("name") == "plateau"
        lrs = self.series("learning_rate") if "learning_rate" in self.columns else []
        if plateau:
            for i in range(1, len(lrs)):
                if lrs[i] < lrs[i - 1] * (1 - 1e-9):
                    out.append({"epoch": i, "kind": "plateau",
                                "text": f"learning rate reduced on a plateau: {lrs[i - 1]:.3g} -> {lrs[i]:.3g}"})
        stopping = callbacks.get("early_stopping")
        epochs = int(self.config.get("epochs") or 0)
        if stopping is not None and self.finished and 0 < len(self.history) < epochs:
            out.append({"epoch": len(self.history) - 1, "kind": "early_stopping",
                        "text": f"early stopping: {stopping.get('monitor', 'val_loss')} did not improve for "
                                f"{stopping.get('patience')} epoch(s); stopped after epoch {len(self.history)} of {epochs}"})
        return sorted(out, key=lambda e: e["epoch"])


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_history(path: Path) -> list[dict[str, float]]:
    """``history.csv`` as one dict per epoch (floats; empty cells left out)."""
    if not path.is_file():
        return []
    rows: list[dict[str, float]] = []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            for raw in csv.DictReader(handle):
                row: dict[str, float] = {}
                for key, value in raw.items():
                    if key is None or value in (None, ""):
                        continue
                    try:
                        row[key] = float(value)
                    except ValueError:
                        continue
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as error:  # a damaged file: one line, not a traceback
        raise CnnlabError(f"history.csv cannot be read ({type(error).__name__}: {str(error)[:100]})", where=str(path),
                          fix="restore the run's history.csv (cnnlab train writes it), or delete it") from None
    return rows


def read_run(run_dir: str | Path) -> Run:
    """Read a run folder; a folder that is not one is a :class:`CnnlabError`."""
    path = Path(run_dir)
    fix = "give the --out folder of a `cnnlab train` run (it holds config.yaml and history.csv or model.json)"
    if not path.is_dir():
        raise CnnlabError("no such run folder", where=str(path), fix=fix)
    config_path = path / CONFIG_FILE
    states = sorted(p for p in (path / STATE_DIR).iterdir() if _STATE.match(p.name)) if (path / STATE_DIR).is_dir() else []
    has_any = (path / HISTORY_FILE).is_file() or (path / META_FILE).is_file() or states
    if not config_path.is_file() or not has_any:
        raise CnnlabError("is not a run folder (no config.yaml with a history, a model or training states)",
                          where=str(path), fix=fix)
    try:
        text = config_path.read_text(encoding="utf-8")
        config = yaml.safe_load(text) or {}
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        reason = ("not UTF-8 text" if isinstance(error, UnicodeDecodeError) else "nested too deeply"
                  if isinstance(error, RecursionError) else f"not valid YAML: {' '.join(str(error).split())}")
        raise CnnlabError(f"config.yaml cannot be read ({reason})", where=str(config_path),
                          fix="restore the run's config.yaml (cnnlab train writes it)") from None
    if not isinstance(config, dict) or not isinstance(config.get("data"), dict):
        raise CnnlabError("config.yaml is not a cnnlab experiment (no data section)", where=str(config_path), fix=fix)
    meta = _json(path / META_FILE)
    meta = meta if isinstance(meta, dict) and meta.get("format") == "cnnlab-bundle" else None
    best = _json(path / "best" / META_FILE)
    best = best if isinstance(best, dict) and best.get("format") == "cnnlab-bundle" else None
    log = _json(path / RUN_LOG)
    sessions = log.get("sessions", []) if isinstance(log, dict) else []
    split = _json(path / SPLIT_FILE)
    return Run(path, config, text, read_history(path / HISTORY_FILE), meta, best,
               split if isinstance(split, dict) else None, [s for s in sessions if isinstance(s, dict)], states)
