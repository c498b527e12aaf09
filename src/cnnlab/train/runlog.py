"""``run.json``: when each training session of a run started and ended, where it ran, and whether it resumed.

The report reads it (start / end time, duration, device, resumed). A session is
written when it starts (``end`` null) and completed when it ends, so a run that
crashed shows a session that never ended::

    {"sessions": [{"start": "2026-12-01T22:31:00+00:00", "end": "...", "seconds": 93.2,
                   "resumed": false, "device": "cpu", "precision": "bf16",
                   "epochs_before": 0, "epochs_after": 2}]}
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cnnlab.files import atomic_write_text

RUN_LOG = "run.json"


def _read(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_LOG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"sessions": []}
    return data if isinstance(data, dict) and isinstance(data.get("sessions"), list) else {"sessions": []}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def start_session(run_dir: Path, *, resumed: bool, device: str, precision: str, epochs_before: int) -> float:
    """Append a started session; returns the monotonic start time for :func:`end_session`."""
    log = _read(run_dir)
    log["sessions"].append({"start": _now(), "end": None, "seconds": None, "resumed": resumed, "device": device,
                            "precision": precision, "epochs_before": epochs_before, "epochs_after": None})
    atomic_write_text(Path(run_dir) / RUN_LOG, json.dumps(log, indent=1) + "\n")
    return time.perf_counter()


def end_session(run_dir: Path, started: float, *, epochs_after: int) -> None:
    """Complete the last session with its end time, duration and epoch count."""
    log = _read(run_dir)
    if not log["sessions"]:
        return
    log["sessions"][-1].update(end=_now(), seconds=round(time.perf_counter() - started, 3), epochs_after=epochs_after)
    atomic_write_text(Path(run_dir) / RUN_LOG, json.dumps(log, indent=1) + "\n")
