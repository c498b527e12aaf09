"""What a run prints: a rich bar per epoch, a summary line per epoch, or nothing.

``verbose`` follows Keras: 1 = a live bar (loss, metrics, images/s, ETA) that
turns into the epoch's summary line, 2 = the summary line only, 0 = silent
(errors still reach stderr). The bar reads the running loss from the device at
most every ``refresh`` seconds, so the step loop is not synchronised per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def format_logs(logs: dict[str, float]) -> str:
    parts = []
    for key, value in logs.items():
        if key == "learning_rate":
            parts.append(f"lr {value:.3g}")
        else:
            parts.append(f"{key} {value:.4f}")
    return " - ".join(parts)


class EpochProgress:
    """One epoch's display; ``update`` is cheap unless ``refresh`` seconds have passed."""

    def __init__(self, verbose: int, epoch: int, epochs: int, steps: int, console: Console | None = None,
                 refresh: float = 0.5) -> None:
        self.verbose, self.epoch, self.epochs, self.steps = verbose, epoch, epochs, steps
        self.console = console or Console()
        self.refresh = refresh
        self.start = self.last = time.perf_counter()
        self.images = 0
        self.progress: Progress | None = None
        if verbose == 1 and self.console.is_terminal:
            self.progress = Progress(
                TextColumn(f"epoch {epoch + 1}/{epochs}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[logs]}"), TextColumn("{task.fields[speed]}"), TimeRemainingColumn(),
                console=self.console, transient=True,
            )
            self.task = self.progress.add_task("train", total=steps, logs="", speed="")
            self.progress.start()

    def update(self, step: int, images: int, read_logs: Callable[[], dict[str, float]]) -> None:
        self.images += images
        if self.progress is None:
            return
        now = time.perf_counter()
        if now - self.last < self.refresh and step < self.steps:
            self.progress.update(self.task, completed=step)
            return
        self.last = now
        speed = f"{self.images / max(now - self.start, 1e-9):.0f} img/s"
        self.progress.update(self.task, completed=step, logs=format_logs(read_logs()), speed=speed)

    def close(self, logs: dict[str, float] | None) -> None:
        if self.progress is not None:
            self.progress.stop()
        if logs is None or self.verbose == 0:
            return
        seconds = time.perf_counter() - self.start
        rate = self.images / max(seconds, 1e-9)
        self.console.print(f"epoch {self.epoch + 1}/{self.epochs} - {seconds:.1f}s - {rate:.0f} img/s - "
                           f"{format_logs(logs)}", highlight=False, soft_wrap=True)
