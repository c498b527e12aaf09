"""``compare_runs``: runs side by side: the config fields that differ, best and final metrics, curves overlaid.

Printed as a rich table in the terminal and written as one self-contained HTML
page (default ``compare.html`` in the current folder). Only the run files are
read (config.yaml, history.csv, model.json): nothing is re-evaluated, so a
comparison of many runs takes a second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text
from cnnlab.report import figures as fig
from cnnlab.report.run import Run, read_run

COMPARE_FILE = "compare.html"
_IGNORED = {"out"}  # always differs, says nothing about the experiment


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {'optimizer.lr': 0.01, ...}; lists and scalars are leaves."""
    if not isinstance(config, dict):
        return {prefix: config}
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def config_differences(runs: Sequence[Run]) -> list[tuple[str, list[Any]]]:
    """(dotted field, value per run) for every field whose value is not the same in all runs."""
    flat = [flatten(r.config) for r in runs]
    keys: list[str] = []
    for f in flat:
        keys.extend(k for k in f if k not in keys)
    rows = []
    for key in keys:
        if key.split(".")[0] in _IGNORED:
            continue
        # A section one run leaves null and another fills (augment: null vs {rotation_range: 10})
        # shows as its filled fields; the null section itself is no extra row.
        if any(k.startswith(key + ".") for k in keys):
            continue
        values = [f.get(key) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, values))
    return rows


def run_metrics(run: Run) -> dict[str, Any]:
    """Best epoch (by the run's monitor) with its value, and the final epoch's metrics."""
    monitor, mode = run.monitor
    best = run.best_epoch
    final = dict(run.history[-1]) if run.history else {}
    final.pop("epoch", None)
    return {"monitor": monitor, "mode": mode, "best_epoch": None if best is None else best + 1,
            "best_value": run.series(monitor)[best] if best is not None else None,
            "best_row": {k: v for k, v in run.history[best].items() if k != "epoch"} if best is not None else {},
            "final": final, "epochs": len(run.history), "finished": run.finished}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}" if abs(value) < 1e-3 and value else f"{value:.4f}"
    if value is None:
        return "null"
    return str(value)


def comparison(run_dirs: Sequence[str | Path]) -> dict[str, Any]:
    """Everything the comparison shows, as plain values."""
    if len(run_dirs) < 2:
        raise CnnlabError("needs at least two runs to compare", where="RUN...", fix="give two or more run folders")
    seen: dict[Path, int] = {}
    for i, d in enumerate(run_dirs):  # two columns of one run compare nothing and cannot be told apart
        first = seen.setdefault(Path(d).resolve(), i)
        if first != i:
            raise CnnlabError(f"the run {d} is given twice (also as {run_dirs[first]})", where="RUN...",
                              fix="give each run folder once")
    runs = [read_run(d) for d in run_dirs]
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # same folder name under different parents: use the path as given
        names = [str(d) for d in run_dirs]
    metrics = [run_metrics(r) for r in runs]
    columns: list[str] = []
    for r in runs:
        columns.extend(c for c in r.columns if c not in columns)
    rows: list[tuple[str, list[str]]] = []
    rows.append(("status", ["finished" if m["finished"] else "not finished" for m in metrics]))
    rows.append(("epochs", [str(m["epochs"]) for m in metrics]))
    rows.append(("best epoch", [f"{m['best_epoch']} ({m['monitor']} {_fmt(m['best_value'])})" if m["best_epoch"] else "—"
                                for m in metrics]))
    for column in columns:
        if column == "learning_rate":
            continue
        rows.append((f"best-epoch {column}", [_fmt(m["best_row"].get(column)) if column in m["best_row"] else "—"
                                              for m in metrics]))
    for column in columns:
        rows.append((f"final {column}", [_fmt(m["final"].get(column)) if column in m["final"] else "—" for m in metrics]))
    differences = [(k, ["—" if v is None else str(v) for v in values]) for k, values in config_differences(runs)]
    plots = []
    for column in columns:
        series = [(name, r.series(column), i) for i, (name, r) in enumerate(zip(names, runs)) if column in r.columns]
        if series:
            plots.append({"title": column, "uri": fig.overlay_curves_uri(series, column)})
    return {"names": names, "paths": [str(r.path) for r in runs], "differences": differences, "metrics": rows,
            "plots": plots, "raw": metrics}


def print_table(data: dict[str, Any], console: Any = None) -> None:
    """The comparison as one rich table: config differences, then the metrics."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title="runs compared", show_lines=False)
    table.add_column("", style="bold")
    for name in data["names"]:
        table.add_column(name, overflow="fold")
    if data["differences"]:
        table.add_row("[italic]config differences[/italic]", *[""] * len(data["names"]))
        for key, values in data["differences"]:
            table.add_row(key, *values)
    else:
        table.add_row("[italic]same config[/italic]", *[""] * len(data["names"]))
    table.add_section()
    for key, values in data["metrics"]:
        table.add_row(key, *values)
    console.print(table)


def compare_runs(run_dirs: Sequence[str | Path], out: str | Path | None = None, *, console: Any = None) -> Path:
    """Print the runs side by side and write the comparison page (``out``, default ./compare.html)."""
    from cnnlab import __version__
    from cnnlab.report.build import render

    from cnnlab.files import check_output

    data = comparison(run_dirs)
    path = Path(out) if out is not None else Path(COMPARE_FILE)
    check_output(path, example=COMPARE_FILE, where=f"--out {path}")  # before the table, not after it
    print_table(data, console)
    html = render("compare.html.j2", title=f"cnnlab: {len(data['names'])} runs compared", cnnlab_version=__version__,
                  **{k: v for k, v in data.items() if k != "raw"})
    atomic_write_text(path, html)
    return path
