"""ImageSet: a data set held as one uint8 array of images plus targets.

Images are ``(N, H, W, C)`` uint8 (C = 1 for gray, 3 for colour), either in
memory or a numpy memmap of the decode-once cache. A subset keeps the same
array and a row index, so splitting a memory-mapped set copies nothing until a
batch is gathered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Task = Literal["classification", "regression"]


@dataclass
class ImageSet:
    """Images ``(N, H, W, C)`` uint8 with one target each.

    ``targets`` are int64 class indices into ``classes`` (classification) or
    float32 numbers (regression, ``classes`` is None). ``files`` are the source
    paths (relative to the folder or CSV) for folder sets, None for built-in
    sets. ``skipped`` lists ``(path, reason)`` for files that could not be used.
    ``empty_classes`` names class folders without one valid image.
    ``original_sizes`` / ``original_modes`` count the files' sizes and modes
    before decoding (folder and CSV sets; empty for built-in sets).
    """

    data: np.ndarray
    targets: np.ndarray
    classes: list[str] | None
    task: Task
    files: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    name: str = ""
    empty_classes: list[str] = field(default_factory=list)
    rows: np.ndarray | None = None  # rows of ``data`` this set holds; None = all
    # Original (height, width) -> count and Pillow mode -> count, for folder sets.
    original_sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    original_modes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != 4 or self.data.dtype != np.uint8:
            raise ValueError(f"ImageSet images must be uint8 (N, H, W, C), got {self.data.dtype} {self.data.shape}")
        n = len(self.rows) if self.rows is not None else self.data.shape[0]
        if len(self.targets) != n or (self.files is not None and len(self.files) != n):
            raise ValueError("ImageSet: images, targets and files must have the same length")

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of every image."""
        _, h, w, c = self.data.shape
        return (h, w, c)

    @property
    def num_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    @property
    def images(self) -> np.ndarray:
        """All images of this set as ``(len(self), H, W, C)`` uint8 (a copy for subsets)."""
        return self.data if self.rows is None else self.gather(np.arange(len(self)))

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """Images at ``indices`` (positions in this set) as ``(len(indices), H, W, C)`` uint8."""
        indices = np.asarray(indices, dtype=np.int64)
        rows = indices if self.rows is None else self.rows[indices]
        if isinstance(self.data, np.memmap):
            # Reading a memmap in file order is much faster than random order.
            order = np.argsort(rows, kind="stable")
            out = np.empty((len(rows), *self.data.shape[1:]), dtype=np.uint8)
            out[order] = self.data[rows[order]]
            return out
        return self.data[rows]

    def subset(self, indices: np.ndarray | list[int]) -> ImageSet:
        """The images at ``indices`` (positions in this set), sharing the image array."""
        indices = np.asarray(indices, dtype=np.int64)
        rows = indices if self.rows is None else self.rows[indices]
        return ImageSet(
            data=self.data,
            rows=rows,
            targets=self.targets[indices],
            classes=self.classes,
            task=self.task,
            files=None if self.files is None else [self.files[i] for i in indices],
            skipped=list(self.skipped),
            name=self.name,
            empty_classes=list(self.empty_classes),
            original_sizes=dict(self.original_sizes),
            original_modes=dict(self.original_modes),
        )

    def class_counts(self) -> dict[str, int] | None:
        """Images per class (every class, zero included), or None for regression."""
        if self.classes is None:
            return None
        counts = np.bincount(self.targets, minlength=len(self.classes))
        return {name: int(count) for name, count in zip(self.classes, counts)}
