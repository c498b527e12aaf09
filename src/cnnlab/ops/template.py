"""Template matching by normalised cross-correlation (the convolution notes, §1.4).

For every position (x, y) where the template T (h, w) fits inside the image I,
with T' = T - mean(T) and I' the window minus its own mean,

    R(x, y) = Σ T'(u, v) I'(x + u, y + v) / sqrt(Σ T'(u, v)² · Σ I'(x + u, y + v)²)

which is OpenCV's ``TM_CCOEFF_NORMED``: 1 for a perfect match (up to brightness
and contrast), 0 for none, -1 for the negative. For colour images the sums run
over the channels too (means per channel), as in OpenCV. Windows with no
variance score 0.

The numerator is a cross-correlation computed with FFTs (Σ T' I' = Σ T' I since
Σ T' = 0); the window sums come from integral images. Everything is float64, so
a 512x512 image and a 64x64 template take a few tens of milliseconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cnnlab.errors import CnnlabError

__all__ = ["match_template"]


def _as_float64(data: Any, name: str) -> tuple[np.ndarray, bool]:
    is_torch = isinstance(data, torch.Tensor)
    array = data.detach().cpu().numpy() if is_torch else np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise CnnlabError(f"must hold numbers, got dtype {array.dtype}", where=name, fix="pass a numeric image")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or min(array.shape) < 1:
        raise CnnlabError(
            f"must be a gray (H, W) or colour (H, W, C) image, got shape {array.shape}",
            where=name,
            fix="pass one image",
        )
    return array.astype(np.float64), is_torch


def _window_sums(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Σ of a over every h x w window (valid positions), per channel, via an integral image."""
    planes = np.ascontiguousarray(np.moveaxis(a, 2, 0))  # (C, H, W): cumsum runs on contiguous rows
    c = np.zeros((planes.shape[0], planes.shape[1] + 1, planes.shape[2] + 1))
    np.cumsum(planes, axis=1, out=c[:, 1:, 1:])
    np.cumsum(c[:, 1:, 1:], axis=2, out=c[:, 1:, 1:])
    sums = c[:, h:, w:] - c[:, :-h, w:] - c[:, h:, :-w] + c[:, :-h, :-w]
    return np.moveaxis(sums, 0, 2)


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFT lengths with only small factors are fast
    (1087, a prime, is ~10x slower than 1125)."""
    best = 1 << max(0, (n - 1).bit_length())
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35 << max(0, (-(-n // power35) - 1).bit_length())  # times the power of 2 reaching n
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def match_template(image: Any, template: Any) -> tuple[Any, tuple[int, int, float]]:
    """Normalised cross-correlation map and the best match.

    ``image`` (H, W) or (H, W, C), ``template`` (h, w) or (h, w, C) with the same
    C. Returns ``(scores, (x, y, score))``: scores (H - h + 1, W - w + 1) with
    values in [-1, 1] (NumPy or torch, like ``image``), and the top-left corner of
    the best window (x = column, y = row) with its score, as ``cv2.minMaxLoc``
    would report it.
    """
    img, is_torch = _as_float64(image, "image")
    tpl, _ = _as_float64(template, "template")
    (height, width, channels), (h, w, tchannels) = img.shape, tpl.shape
    if channels != tchannels:
        raise CnnlabError(
            f"has {tchannels} channel(s) but the image has {channels}",
            where="template",
            fix="read both as gray (or both as colour)",
        )
    if h > height or w > width:
        raise CnnlabError(
            f"is {h}x{w}, larger than the {height}x{width} image",
            where="template",
            fix="use a template smaller than the image (crop it from the photo)",
        )
    tpl = tpl - tpl.mean(axis=(0, 1))
    template_energy = float((tpl**2).sum())
    if template_energy <= 1e-12 * max(1.0, float(np.abs(img).max()) ** 2) * tpl.size:
        raise CnnlabError(
            "is flat (every pixel the same value): normalised correlation is undefined",
            where="template",
            fix="choose a template with some texture or edges",
        )

    # Numerator: correlation of I with T' via FFT, summed over channels.
    shape = (_fast_length(height + h - 1), _fast_length(width + w - 1))
    spectrum = np.fft.rfft2(img, s=shape, axes=(0, 1)) * np.conj(np.fft.rfft2(tpl, s=shape, axes=(0, 1)))
    full = np.fft.irfft2(spectrum.sum(axis=2), s=shape)
    numerator = full[: height - h + 1, : width - w + 1]

    # Σ I'² per window = Σ I² - (Σ I)² / n, per channel, then summed.
    n = h * w
    sums = _window_sums(img, h, w)
    energy = (_window_sums(img * img, h, w) - sums * sums / n).sum(axis=2)
    scale = np.sqrt(np.maximum(energy, 0.0) * template_energy)
    # Flat windows (variance lost in rounding) score 0, like OpenCV.
    tiny = 1e-9 * np.sqrt(template_energy) * max(1.0, float(np.abs(img).max())) * np.sqrt(n * channels)
    scores = np.where(scale > tiny, numerator / np.where(scale > tiny, scale, 1.0), 0.0)
    scores = np.clip(scores, -1.0, 1.0)

    y, x = np.unravel_index(int(np.argmax(scores)), scores.shape)
    best = (int(x), int(y), float(scores[y, x]))
    if is_torch:
        return torch.from_numpy(scores).to(image.device), best
    return scores, best
