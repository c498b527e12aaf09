"""``shapes``: the embedded default data set, generated deterministically, no download.

Four classes (circle, square, triangle, cross) of random size, position,
rotation and colour, drawn antialiased on a noisy background with a colour
gradient. Everything is vectorised numpy, so a few thousand 32x32 images take
well under a second; the result is cached under the data root anyway.

The train and test splits come from independent random streams of the same
seed, so they never share an image and never change between runs or machines
(numpy's PCG64 stream is stable across versions).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from cnnlab.data.imageset import ImageSet
from cnnlab.files import atomic_path

CLASSES = ["circle", "square", "triangle", "cross"]
DEFAULTS = {"train": 4000, "test": 1000}
_SPLIT_STREAM = {"train": 0, "test": 1}


def generate_shapes(n: int, *, size: int = 32, seed: int = 0, stream: int = 0,
                    masks: bool = False) -> tuple[np.ndarray, ...]:
    """``(images (n, size, size, 3) uint8, labels (n,) int64)``, balanced classes in random order.

    ``masks=True`` adds each object's mask, ``(n, size, size)`` bool: the pixels at least half
    covered by the shape (what a localisation measure such as the pointing game scores
    against). The images are the same either way.
    """
    rng = np.random.default_rng([seed, stream])
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    half = rng.uniform(0.17, 0.36, n) * size  # circumradius-like half extent
    margin = half * 0.9
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    theta = rng.uniform(0, 2 * np.pi, n)
    background = rng.uniform(0, 255, (n, 3))
    # The shape colour differs from the background by at least 70 in mean level,
    # so the shape is always visible but colour alone says nothing about the class.
    offset = rng.uniform(70, 160, (n, 1)) * rng.choice([-1.0, 1.0], (n, 1)) + rng.normal(0, 40, (n, 3))
    foreground = np.clip(background + offset, 0, 255)
    flipped = np.clip(background - offset, 0, 255)
    too_close = np.abs((foreground - background).mean(1)) < 60
    foreground[too_close] = flipped[too_close]

    # Coverage on a 2x supersampled grid, averaged down: antialiased edges.
    sub = (np.arange(2 * size) + 0.5) / 2
    gy, gx = np.meshgrid(sub, sub, indexing="ij")
    alpha = np.zeros((n, size, size), dtype=np.float32)
    for k in range(len(CLASSES)):
        idx = np.flatnonzero(labels == k)
        dx = gx[None] - cx[idx, None, None]
        dy = gy[None] - cy[idx, None, None]
        c, s = np.cos(theta[idx])[:, None, None], np.sin(theta[idx])[:, None, None]
        u, v = c * dx + s * dy, -s * dx + c * dy
        r = half[idx, None, None]
        mask = _mask(CLASSES[k], u, v, r)
        alpha[idx] = mask.reshape(len(idx), size, 2, size, 2).mean(axis=(2, 4))

    # Background: a random linear gradient plus pixel noise.
    ramp = np.linspace(-1, 1, size)
    direction = rng.uniform(0, 2 * np.pi, n)
    gradient = (np.cos(direction)[:, None, None] * ramp[None, None, :]
                + np.sin(direction)[:, None, None] * ramp[None, :, None]) * rng.uniform(0, 40, (n, 1, 1))
    back = background[:, None, None, :] + gradient[..., None]
    image = back * (1 - alpha[..., None]) + foreground[:, None, None, :] * alpha[..., None]
    image += rng.normal(0, 18, image.shape)
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if masks:
        return pixels, labels, alpha >= 0.5
    return pixels, labels


def _mask(kind: str, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    if kind == "circle":
        return (u * u + v * v <= (0.8 * r) ** 2).astype(np.float32)
    if kind == "square":
        return (np.maximum(np.abs(u), np.abs(v)) <= 0.7 * r).astype(np.float32)
    if kind == "triangle":  # equilateral, circumradius r: three half-planes at the inradius r/2
        inside = np.ones(u.shape, dtype=bool)
        for angle in (0.0, 2 * np.pi / 3, 4 * np.pi / 3):
            inside &= np.cos(angle) * u + np.sin(angle) * v <= 0.5 * r
        return inside.astype(np.float32)
    if kind == "cross":
        a, t = np.abs(u), np.abs(v)
        arm, thick = r, 0.3 * r
        return (((a <= arm) & (t <= thick)) | ((a <= thick) & (t <= arm))).astype(np.float32)
    raise ValueError(kind)


def load_shapes(
    split: str = "train",
    *,
    n: int | None = None,
    size: int = 32,
    seed: int = 0,
    cache_folder: Path | None = None,
) -> ImageSet:
    """The ``shapes`` set as an :class:`ImageSet` (generated once, then read from the cache)."""
    n = DEFAULTS[split] if n is None else n
    params = {"n": n, "size": size, "seed": seed, "split": split, "version": 1}
    images = labels = None
    path = None
    if cache_folder is not None:
        key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        path = cache_folder / "shapes" / f"shapes-{split}-{key}.npz"
        try:
            with np.load(path) as stored:
                images, labels = stored["images"], stored["labels"]
        except (OSError, KeyError, ValueError):
            images = None
    if images is None:
        images, labels = generate_shapes(n, size=size, seed=seed, stream=_SPLIT_STREAM[split])
        if path is not None:
            try:
                with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                    np.savez(handle, images=images, labels=labels)
            except OSError:
                pass  # a read-only cache only costs regeneration time
    return ImageSet(data=images, targets=labels, classes=list(CLASSES), task="classification",
                    name=f"shapes:{split}")
