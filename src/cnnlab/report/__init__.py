"""cnnlab.report: one self-contained HTML page per run, and a comparison of runs.

``write_report(run_dir, out=None)`` writes ``RUN/report.html``; ``compare_runs(run_dirs, out=None)``
prints the runs side by side and writes one HTML page. Both import matplotlib /
torch only when called, so ``import cnnlab.report`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_report", "compare_runs"]


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of a run folder (``RUN/report.html`` unless ``out``); see :mod:`cnnlab.report.build`."""
    from cnnlab.report.build import write_report as _write

    return _write(run_dir, out)


def compare_runs(run_dirs: list[str | Path], out: str | Path | None = None, *, console: Any = None) -> Path:
    """Compare runs (config differences, best and final metrics, curves); see :mod:`cnnlab.report.compare`."""
    from cnnlab.report.compare import compare_runs as _compare

    return _compare(run_dirs, out, console=console)
