"""``cnnlab data inspect``: what is in a data set, and what augmentation does to it.

:func:`inspect_dataset` returns a JSON-friendly report (classes, counts with an
imbalance flag, image sizes and modes, skipped files with reasons) and writes a
PNG grid of samples per class; with an augmentation config, also a grid of
augmented versions of a few images (first column: the original).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.data.imageset import ImageSet
from cnnlab.errors import CnnlabError, check_seed
from cnnlab.files import atomic_path, check_output, exists

IMBALANCE_RATIO = 1.5  # largest class / smallest class at or above this is flagged
MAX_ROWS = 20


def class_balance(counts: dict[str, int]) -> tuple[float | None, bool]:
    """``(largest / smallest count, flagged)``; a class with no image: ``(None, True)``."""
    values = list(counts.values())
    if len(values) < 2:
        return None, False
    smallest, largest = min(values), max(values)
    if smallest == 0:
        return None, True
    return largest / smallest, largest / smallest >= IMBALANCE_RATIO


def inspect_dataset(
    source: str,
    *,
    split: str = "train",
    root: str | Path | None = None,
    out: str | Path | None = None,
    per_class: int = 8,
    augment: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Open ``source`` and describe it; write ``samples.png`` (and ``augmented.png``) into ``out``
    (only when ``out`` is given: nothing is written otherwise)."""
    from cnnlab.data.sources import open_dataset

    seed = check_seed(seed, "--seed")
    if out is not None:
        check_output(out, "dir", where=f"--out {out}")
        if exists(source):
            src, dst = Path(source).resolve(), Path(out).resolve()
            if dst == src or src in dst.parents:
                raise CnnlabError("the output folder is inside the data set", where=str(out),
                                  fix="write the report somewhere else: cnnlab never writes into a data folder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report lists skipped files itself
        imageset = open_dataset(source, split=split, root=root, progress=progress)
    h, w, c = imageset.image_shape
    report: dict[str, Any] = {
        "source": source, "split": split, "task": imageset.task, "images": len(imageset),
        "image_shape": [h, w, c], "classes": imageset.classes,
        "original_sizes": [{"height": hh, "width": ww, "count": n}
                           for (hh, ww), n in sorted(imageset.original_sizes.items(), key=lambda kv: -kv[1])],
        "original_modes": dict(sorted(imageset.original_modes.items(), key=lambda kv: -kv[1])),
        "skipped": [{"file": f, "reason": r} for f, r in imageset.skipped],
        "empty_classes": imageset.empty_classes,
    }
    counts = imageset.class_counts()
    if counts is not None:
        ratio, flagged = class_balance(counts)
        report.update(counts=counts, imbalance_ratio=ratio, imbalanced=flagged)
    else:
        t = imageset.targets.astype(np.float64)
        report["targets"] = {"min": float(t.min()), "max": float(t.max()), "mean": float(t.mean()),
                             "std": float(t.std())}
    if out is not None:
        out = Path(out)
        report["samples_png"] = str(save_samples_grid(imageset, out / "samples.png", per_class, seed))
        if augment is not None:
            report["augmented_png"] = str(save_augment_grid(imageset, out / "augmented.png", augment, seed))
    return report


def _pick(imageset: ImageSet, per_class: int, seed: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    rows = []
    if imageset.classes is None:
        order = np.argsort(imageset.targets, kind="stable")
        picked = order[np.linspace(0, len(order) - 1, min(len(order), per_class * 4)).astype(int)]
        for chunk in np.array_split(picked, max(1, len(picked) // per_class)):
            label = f"{imageset.targets[chunk[0]]:.3g} .. {imageset.targets[chunk[-1]]:.3g}"
            rows.append((label, chunk))
        return rows
    for k, name in enumerate(imageset.classes[:MAX_ROWS]):
        members = np.flatnonzero(imageset.targets == k)
        rows.append((name, np.sort(rng.permutation(members)[:per_class])))
    return rows


def _figure(grid: list[tuple[str, list[np.ndarray]]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max((len(images) for _, images in grid), default=1) or 1
    fig, axes = plt.subplots(len(grid), cols, figsize=(1.2 * cols + 1.2, 1.25 * len(grid) + 0.4), squeeze=False)
    for r, (label, images) in enumerate(grid):
        for col in range(cols):
            ax = axes[r][col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(images):
                image = images[col]
                ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255,
                          interpolation="nearest")
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def save_samples_grid(imageset: ImageSet, path: Path, per_class: int = 8, seed: int = 0) -> Path:
    """A PNG with one row per class (up to 20) of ``per_class`` random samples."""
    rows = [(label, [imageset.gather(np.asarray([i]))[0] for i in idx]) for label, idx in _pick(imageset, per_class, seed)]
    more = f" (first {MAX_ROWS} of {len(imageset.classes)} classes)" if imageset.classes and len(imageset.classes) > MAX_ROWS else ""
    return _figure(rows, path, f"{imageset.name}: samples per class{more}")


def save_augment_grid(imageset: ImageSet, path: Path, config: dict[str, Any], seed: int = 0,
                      images: int = 4, versions: int = 7) -> Path:
    """A PNG: each row is one image, then ``versions`` augmented versions of it."""
    import torch

    from cnnlab.data.augment import Augment

    augment = Augment.from_config(config)
    picked = np.random.default_rng(seed).permutation(len(imageset))[:images]
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for i in np.sort(picked):
        original = imageset.gather(np.asarray([i]))  # (1, H, W, C)
        x = torch.from_numpy(original).permute(0, 3, 1, 2).float().div(255).repeat(versions, 1, 1, 1)
        out = augment(x, generator).mul(255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        label = imageset.classes[imageset.targets[i]] if imageset.classes else f"{imageset.targets[i]:.3g}"
        rows.append((label, [original[0], *out]))
    return _figure(rows, path, f"augmentation: {augment.extra_repr() or 'none'}")
