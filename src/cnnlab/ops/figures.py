"""Lab figures: before / kernel / after (like the slides of the course) and heat maps.

Matplotlib is used through its object API with the Agg canvas (no pyplot, no
display, no global state), and imported only when a figure is drawn.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.files import atomic_path
from cnnlab.ops.image import to_uint8

__all__ = ["colorize", "save_compare_figure"]


def colorize(values: np.ndarray, low: float = -1.0, high: float = 1.0, cmap: str = "viridis") -> np.ndarray:
    """Map a 2-D array to RGB floats in [0, 1] with a matplotlib colour map over [low, high]."""
    from matplotlib import colormaps

    span = (np.asarray(values, dtype=np.float64) - low) / (high - low)
    return colormaps[cmap](np.clip(span, 0.0, 1.0))[:, :, :3].astype(np.float32)


def save_compare_figure(
    path: str | os.PathLike[str],
    before: Any,
    kernel: np.ndarray,
    after: Any,
    *,
    title: str = "",
    scale: str = "clip",
) -> Path:
    """Write a three-panel PNG: the input, the kernel with its weights, the output."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4), layout="constrained")
    axes = figure.subplots(1, 3, width_ratios=[1, 0.7, 1])
    for axis, picture, label in ((axes[0], before, "before"), (axes[2], after, "after")):
        pixels = to_uint8(picture, "clip" if picture is before else scale)  # type: ignore[arg-type]
        axis.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axis.set_title(f"{label} ({'x'.join(str(n) for n in np.shape(picture))})")
        axis.set_axis_off()
    weights = np.asarray(kernel, dtype=np.float64)
    limit = float(np.abs(weights).max()) or 1.0
    axes[1].imshow(weights, cmap="coolwarm", vmin=-limit, vmax=limit)
    axes[1].set_title(f"kernel {weights.shape[0]}x{weights.shape[1]}")
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    if weights.size <= 49:  # write the weights in the cells, like the slides
        for (row, col), value in np.ndenumerate(weights):
            text = f"{value:.3g}" if value != int(value) else f"{int(value)}"
            axes[1].text(col, row, text, ha="center", va="center", fontsize=10 if weights.shape[1] <= 5 else 7)
    if title:
        figure.suptitle(title)
    target = Path(path)
    with atomic_path(target) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    return target
