"""Seeing explanations: overlays, PNG bytes, the explanation figure, feature maps and filters.

Figures are drawn with matplotlib's Agg canvas on a ``Figure`` object (no pyplot state, so
it is safe in a server thread); PNG files are written atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_path
from cnnlab.explain.core import (
    _candidates,
    as_input,
    capture,
    check_feature_map,
    device_of,
    evaluating,
    resolve_layer,
)


# ----------------------------------------------------------------------------- images


def _as_rgb(image: Any) -> np.ndarray:
    """uint8 (H, W) / (H, W, 1|3|4) or float in [0, 1] -> float (H, W, 3) in [0, 1]."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)  # CHW
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    else:
        array = np.clip(array.astype(np.float32), 0.0, 1.0)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise CnnlabError(f"an image is (H, W) or (H, W, 1|3|4), got shape {array.shape}", where="image",
                          fix="pass a grey or RGB image")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, -1)
    return array[..., :3]


def _resize(heat: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float map to (H, W) (align_corners=False, as the maps themselves)."""
    if heat.shape == size:
        return heat
    t = torch.from_numpy(np.ascontiguousarray(heat, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def overlay(image: Any, heat: Any, alpha: float = 0.5, colormap: str = "jet") -> np.ndarray:
    """The heat map coloured with ``colormap`` and laid over ``image``: uint8 (H, W, 3).

    out = (1 - alpha) * image + alpha * colormap(heat); ``heat`` (h, w) in [0, 1] is resized
    bilinearly to the image when the sizes differ.
    """
    from matplotlib import colormaps

    rgb = _as_rgb(image)
    heat = np.nan_to_num(np.asarray(heat, dtype=np.float32))
    if heat.ndim != 2:
        raise CnnlabError(f"a heat map is (H, W), got shape {heat.shape}", where="heat", fix="pass one map")
    heat = np.clip(_resize(heat, rgb.shape[:2]), 0.0, 1.0)
    try:
        cmap = colormaps[colormap]
    except KeyError:
        raise CnnlabError(f"unknown colormap {colormap!r}", where="colormap",
                          fix="use a matplotlib colormap name such as jet, inferno, viridis") from None
    colour = cmap(heat)[..., :3]
    out = (1.0 - alpha) * rgb + alpha * colour
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def to_png_bytes(array: np.ndarray, optimize: bool = False) -> bytes:
    """A uint8 image (H, W), (H, W, 1) or (H, W, 3|4) as PNG bytes (Pillow, lossless).

    ``optimize``: Pillow's slower, smaller encoding (pages that embed many pictures).
    """
    from PIL import Image

    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise CnnlabError(f"PNG images are uint8, got {array.dtype}", where="image", fix="convert to uint8 first")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", optimize=optimize)
    return buffer.getvalue()


def save_png(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write a uint8 image as a PNG file, atomically."""
    data = to_png_bytes(array)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


def _figure_png(fig: Any, path: str | os.PathLike[str] | None, dpi: int = 100) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    if path is not None:
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(data)
    return data


def save_explanation_png(image: Any, heat: Any, path: str | os.PathLike[str] | None = None, *, title: str = "",
                         alpha: float = 0.5, colormap: str = "jet") -> bytes:
    """The picture, the heat map and the overlay side by side, ``title`` above: PNG bytes
    (also written to ``path`` when given)."""
    from matplotlib.figure import Figure

    rgb = _as_rgb(image)
    heat = np.clip(_resize(np.asarray(heat, dtype=np.float32), rgb.shape[:2]), 0, 1)
    fig = Figure(figsize=(9.6, 3.6))
    axes = fig.subplots(1, 3)
    axes[0].imshow(rgb, interpolation="nearest")
    axes[0].set_title("picture")
    shown = axes[1].imshow(heat, cmap=colormap, vmin=0, vmax=1, interpolation="bilinear")
    axes[1].set_title("heat map")
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
    axes[2].imshow(overlay(rgb, heat, alpha, colormap), interpolation="nearest")
    axes[2].set_title("overlay")
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _figure_png(fig, path)


# ----------------------------------------------------------------------------- feature maps


def feature_maps(model: Any, image: Any, layer: str | nn.Module | None = None) -> np.ndarray:
    """The activations A_n of ``layer`` for one image: float32 (C, h, w).

    ``image`` as :func:`cnnlab.explain.explain` takes images (the first one is used);
    ``layer`` a name as ``cnnlab summary`` prints it, default the last feature map.
    """
    from cnnlab.explain.core import float32

    module = float32(model.module if hasattr(model, "prepare") and hasattr(model, "module") else model)
    if not isinstance(module, nn.Module):
        raise CnnlabError(f"cannot read feature maps of a {type(model).__name__}", where="model",
                          fix="pass a loaded bundle or a torch.nn.Module")
    x = as_input(model, image)[:1].to(device_of(module))
    name, layer_module = resolve_layer(module, layer, x)
    with torch.no_grad(), evaluating(module), capture(layer_module, need_grad=False) as box:
        module(x)
    return check_feature_map(name, box.get("A"), module, x)[0].float().cpu().numpy()


def _grid(tiles: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """(N, h, w[, 3]) float tiles in [0, 1] -> one mosaic (with NaN gaps shown as the background)."""
    n = len(tiles)
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    h, w = tiles.shape[1:3]
    shape = (rows * (h + pad) + pad, columns * (w + pad) + pad, *tiles.shape[3:])
    mosaic = np.full(shape, np.nan, dtype=np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        mosaic[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tile
    return mosaic


def _scaled(tiles: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    low = tiles.min(axis=axes, keepdims=True)
    high = tiles.max(axis=axes, keepdims=True)
    span = np.where(high - low > 0, high - low, 1.0)
    return (tiles - low) / span


def feature_grid(maps: np.ndarray, path: str | os.PathLike[str] | None = None, *, title: str = "",
                 max_maps: int = 64, colormap: str = "viridis") -> bytes:
    """Feature maps (C, h, w) as a grid, each map scaled to its own [min, max]: PNG bytes."""
    from matplotlib.figure import Figure

    maps = np.asarray(maps, dtype=np.float32)[:max_maps]
    mosaic = _grid(_scaled(maps, (1, 2)))
    fig = Figure(figsize=(8, 8 * mosaic.shape[0] / mosaic.shape[1] + 0.6))
    ax = fig.add_subplot()
    cmap = __import__("matplotlib").colormaps[colormap].with_extremes(bad="white")
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title or f"{len(maps)} feature maps")
    fig.tight_layout()
    return _figure_png(fig, path)


def _conv_weight(module: nn.Module) -> torch.Tensor | None:
    weight = getattr(module, "weight", None)
    return weight if isinstance(weight, torch.Tensor) and weight.dim() == 4 else None


def filters(model: Any, layer: str | nn.Module | None = None) -> tuple[str, np.ndarray]:
    """(layer name, weights float32 (out, in, kh, kw)) of a convolutional layer, default the first."""
    module = model.module if hasattr(model, "prepare") and hasattr(model, "module") else model
    if not isinstance(module, nn.Module):
        raise CnnlabError(f"cannot read filters of a {type(model).__name__}", where="model",
                          fix="pass a loaded bundle or a torch.nn.Module")
    convs = [(name, m) for name, m in _candidates(module) if _conv_weight(m) is not None]
    if not convs:
        raise CnnlabError("the model has no convolutional layer", where="model",
                          fix="show filters of a convolutional network")
    if layer is None:
        name, chosen = convs[0]
    else:
        by_name = dict(_candidates(module))  # every layer by its summary name: a pooling layer is named, then refused
        found = layer if isinstance(layer, nn.Module) else by_name.get(layer)
        if found is None and isinstance(layer, str):
            try:
                found = module.get_submodule(layer)
            except AttributeError:
                found = None
        if found is None or _conv_weight(found) is None:
            names = [n for n, _ in convs]
            what = f"the model has no layer {layer!r}" if found is None else f"layer {layer!r} is not convolutional"
            shown = ", ".join(names) if len(names) <= 30 else ", ".join(names[:20]) + f" ... ({len(names)} in all)"
            raise CnnlabError(f"{what} (it has no filters)" if found is not None else what, where="--layer",
                              fix=f"use a convolutional layer: {shown}")
        chosen = found
        name = next((n for n, m in convs if m is found), str(layer))
    return name, _conv_weight(chosen).detach().float().cpu().numpy()


def filter_grid(weights: np.ndarray, path: str | os.PathLike[str] | None = None, *, title: str = "",
                max_filters: int = 64, max_inputs: int = 16) -> bytes:
    """Filters (out, in, kh, kw) as a grid: PNG bytes.

    Three input channels: one colour tile per filter (its RGB weights scaled to [0, 1]).
    Otherwise one grey tile per (filter, input channel), a row per filter.
    """
    from matplotlib.figure import Figure

    weights = np.asarray(weights, dtype=np.float32)[:max_filters]
    out_ch, in_ch = weights.shape[:2]
    if in_ch == 3:
        tiles = _scaled(weights.transpose(0, 2, 3, 1), (1, 2, 3))
        mosaic = _grid(tiles)
        kwargs: dict[str, Any] = {}
    else:
        shown = weights[:, :max_inputs]
        tiles = _scaled(shown.reshape(-1, *shown.shape[2:]), (1, 2))
        mosaic = _grid(tiles, columns=shown.shape[1] if shown.shape[1] > 1 else None)
        kwargs = {"cmap": __import__("matplotlib").colormaps["gray"].with_extremes(bad="white"), "vmin": 0, "vmax": 1}
    fig = Figure(figsize=(8, min(40.0, 8 * mosaic.shape[0] / mosaic.shape[1] + 0.6)))
    ax = fig.add_subplot()
    if in_ch == 3:
        rgb = np.where(np.isnan(mosaic), 1.0, mosaic)
        ax.imshow(rgb, interpolation="nearest")
    else:
        ax.imshow(np.ma.masked_invalid(mosaic), interpolation="nearest", **kwargs)
    ax.set_axis_off()
    ax.set_title(title or f"{out_ch} filters {weights.shape[2]}x{weights.shape[3]} x {in_ch} input channel(s)")
    fig.tight_layout()
    return _figure_png(fig, path)
