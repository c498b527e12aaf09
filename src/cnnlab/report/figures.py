"""The report's pictures, each a ``data:image/png;base64,...`` URI (nothing is linked from outside).

Plots come from matplotlib's Agg backend (no display needed); image tiles
(samples, filters, feature maps) are composed with numpy and encoded with
Pillow, then scaled up in the page with ``image-rendering: pixelated`` so a
32x32 image costs 32x32 pixels in the file.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

TRAIN_COLOUR, VAL_COLOUR, BEST_COLOUR, EVENT_COLOUR = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def png_uri(data: bytes) -> str:
    """PNG bytes -> a ``data:image/png;base64,...`` URI (the page embeds every picture)."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_uri(fig: Any, dpi: int = 80) -> str:
    """Encode a matplotlib figure as a PNG data URI and close it."""
    plt = _plt()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return png_uri(buffer.getvalue())


def array_uri(image: np.ndarray) -> str:
    """uint8 (H, W), (H, W, 1) or (H, W, 3) -> PNG data URI (Pillow, lossless)."""
    from cnnlab.explain.visual import to_png_bytes

    return png_uri(to_png_bytes(np.asarray(image).astype(np.uint8, copy=False), optimize=True))


def to_unit(array: np.ndarray) -> np.ndarray:
    """Min-max scaled to [0, 1] (a constant array becomes 0.5)."""
    array = np.asarray(array, dtype=np.float64)
    lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
    if not math.isfinite(lo) or not math.isfinite(hi) or hi - lo < 1e-12:
        return np.full(array.shape, 0.5)
    return (array - lo) / (hi - lo)


def tile(images: Sequence[np.ndarray], columns: int, gap: int = 1, fill: int = 255) -> np.ndarray:
    """uint8 images of one size (H, W[, C]) in a grid with ``gap`` pixels between them."""
    first = np.asarray(images[0])
    h, w = first.shape[:2]
    c = 1 if first.ndim == 2 else first.shape[2]
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    out = np.full((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, c), fill, dtype=np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        im = np.asarray(image).reshape(h, w, -1)
        out[r * (h + gap):r * (h + gap) + h, col * (w + gap):col * (w + gap) + w] = im
    return out[..., 0] if c == 1 else out


def colormap(unit: np.ndarray, name: str = "viridis") -> np.ndarray:
    """[0, 1] (H, W) -> uint8 (H, W, 3) through a matplotlib colormap."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return (cmap(np.clip(unit, 0, 1))[..., :3] * 255).round().astype(np.uint8)


# ------------------------------------------------------------------------------ curves


def curve_uri(epochs: Sequence[int], train: Sequence[float] | None, val: Sequence[float] | None, *, title: str,
              best: int | None, events: Sequence[dict[str, Any]] = (), log_y: bool = False,
              train_label: str = "train") -> str:
    """One metric over the epochs (numbered from 1): train and validation, the best epoch, the events."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    x = [e + 1 for e in epochs]
    if train is not None:
        ax.plot(x, train, marker="o", ms=3, color=TRAIN_COLOUR, label=train_label)
    if val is not None:
        ax.plot(x, val, marker="o", ms=3, color=VAL_COLOUR, label="validation")
    if best is not None:
        ax.axvline(best + 1, color=BEST_COLOUR, ls="--", lw=1, label=f"best epoch {best + 1}")
    for event in events:
        ax.axvline(event["epoch"] + 1, color=EVENT_COLOUR, ls=":", lw=1.2,
                   label="early stop" if event["kind"] == "early_stopping" else "LR reduced")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7)
    fig.subplots_adjust(left=0.17, right=0.97, top=0.9, bottom=0.16)
    return figure_uri(fig)


def overlay_curves_uri(runs: Sequence[tuple[str, Sequence[float], int]], title: str) -> str:
    """Several runs' series of one metric on one plot (the comparison page): (name, values, colour index)."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for name, values, colour in runs:
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name, color=f"C{colour % 10}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.15, right=0.97, top=0.9, bottom=0.15)
    return figure_uri(fig)


# -------------------------------------------------------------------------- evaluation


def confusion_uri(matrix: np.ndarray, classes: Sequence[str]) -> str:
    """The confusion matrix (rows true, columns predicted) twice, side by side: the counts, and each
    row divided by its sum (recall on the diagonal). One figure with fixed margins: matplotlib's
    text layout is most of a report's time, and tight_layout would lay every label out twice."""
    plt = _plt()
    counts = np.asarray(matrix, dtype=np.float64)
    sums = counts.sum(1, keepdims=True)
    normalised = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
    k = len(classes)
    labels = [c if len(c) <= 14 else c[:13] + "…" for c in classes]
    side = min(1.6 + 0.42 * k, 10.0)
    margin = 0.25 + 0.075 * max((len(x) for x in labels), default=1) if k <= 40 else 0.4  # inches of tick labels
    width, height = 2 * (side + 0.7) + 2 * margin, side + margin + 0.5
    fig, axes = plt.subplots(1, 2, figsize=(width, height))
    fig.subplots_adjust(left=margin / width, right=1 - 0.6 / width, bottom=margin / height, top=1 - 0.35 / height,
                        wspace=(margin + 0.7) / (side + 0.2))
    for ax, m, normal in ((axes[0], counts, False), (axes[1], normalised, True)):
        image = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normal else None)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
        if k <= 40:
            ax.set_xticks(range(k), labels, rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(k), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if k <= 20:
            peak = m.max() if m.size else 0
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, f"{m[i, j]:.2f}" if normal else str(int(m[i, j])), ha="center", va="center",
                            fontsize=7, color="white" if m[i, j] > peak / 2 else "black")
        ax.set_title("row-normalised (recall on the diagonal)" if normal else "counts", fontsize=10)
    return figure_uri(fig)


def scatter_uri(truth: np.ndarray, predicted: np.ndarray) -> str:
    """Predicted against true values, with the line y = x."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.scatter(truth, predicted, s=6, alpha=0.5, color=TRAIN_COLOUR, rasterized=True)
    lo = float(min(np.min(truth), np.min(predicted)))
    hi = float(max(np.max(truth), np.max(predicted)))
    ax.plot([lo, hi], [lo, hi], color=EVENT_COLOUR, lw=1, label="y = x")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("predicted vs true", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.17, right=0.96, top=0.92, bottom=0.13)
    return figure_uri(fig)


def histogram_uri(residuals: np.ndarray) -> str:
    """Residuals (predicted - true)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.hist(residuals, bins=min(50, max(5, len(residuals) // 4)), color=VAL_COLOUR, alpha=0.85)
    ax.axvline(0, color="black", lw=1)
    ax.set_xlabel("residual (predicted - true)")
    ax.set_ylabel("images")
    ax.set_title("residuals", fontsize=10)
    ax.grid(alpha=0.3)
    fig.subplots_adjust(left=0.17, right=0.96, top=0.92, bottom=0.13)
    return figure_uri(fig)


# ------------------------------------------------------------------------ a look inside


def filters_image(weight: np.ndarray) -> np.ndarray:
    """First-layer kernels (out, in, kh, kw) as tiles: RGB for 3 input channels, else the mean over them.

    Each filter is min-max scaled on its own, as the notes' filter figures are.
    """
    w = np.asarray(weight, dtype=np.float64)
    tiles = []
    for kernel in w[:64]:
        shown = np.transpose(kernel, (1, 2, 0)) if kernel.shape[0] == 3 else kernel.mean(0)
        tiles.append((to_unit(shown) * 255).round().astype(np.uint8))
    return tile(tiles, columns=min(16, len(tiles)), gap=1)


def maps_image(maps: np.ndarray, limit: int = 16) -> np.ndarray:
    """Feature maps (C, H, W) of one image: the first ``limit`` channels, each scaled, viridis."""
    tiles = [colormap(to_unit(m)) for m in np.asarray(maps)[:limit]]
    return tile(tiles, columns=min(8, len(tiles)), gap=1)
