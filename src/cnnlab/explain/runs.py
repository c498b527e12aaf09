"""Explaining a trained run on image files: what `cnnlab explain`, `features` and `filters` call."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError
from cnnlab.explain.methods import explain
from cnnlab.explain.visual import feature_grid, feature_maps, filter_grid, filters, save_explanation_png


def _load(run: str | os.PathLike[str]) -> Any:
    from cnnlab.inference import load

    return load(run)


def _picture(path: Path, channels: int) -> Any:
    """The image as decoded for display (its own size), or a one-line error naming the file."""
    from cnnlab.data.decode import BadImage, decode_image

    try:
        return decode_image(path, None, 1 if channels == 1 else 3)
    except BadImage as bad:
        raise CnnlabError(f"cannot use this image: {bad}", where=str(path),
                          fix="give a readable JPEG/PNG/... image") from None


def _predictions(model: Any, paths: list[str]) -> list[str]:
    """'square (97.3%)' per image (the predicted class), or 'value 12.5' for regression."""
    import numpy as np

    out = np.asarray(model.predict(paths))
    said = []
    for row in out.reshape(len(paths), -1):
        if model.task == "regression":
            said.append(f"value {float(row[0]):.4g}")
            continue
        if row.size == 1:  # one sigmoid unit
            index, p = (1, float(row[0])) if row[0] > 0.5 else (0, 1 - float(row[0]))
        else:
            index = int(row.argmax())
            p = float(row[index])
        names = model.classes or []
        said.append(f"{names[index] if index < len(names) else index} ({p:.1%})")
    return said


def explain_files(run: str | os.PathLike[str], images: Sequence[str | os.PathLike[str]],
                  out: str | os.PathLike[str], *, method: str = "gradcam", target: str | int | None = None,
                  layer: str | None = None, batch_size: int = 32) -> list[dict[str, Any]]:
    """One PNG per image in ``out`` (picture, heat map, overlay; the prediction in the title).

    Returns one record per image: ``{file, png, predicted, probability, explained, layer,
    method, empty}``.
    """
    from cnnlab.inference.evaluate import image_files

    model = _load(run)
    files = image_files([str(i) for i in images])
    channels = int(model.preprocessing.get("channels", 3))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CnnlabError("is a file, not a folder", where=str(out), fix="give a folder for the PNGs (-o DIR)")
    records: list[dict[str, Any]] = []
    used: set[str] = set()
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        pictures = [_picture(f, channels) for f in chunk]  # every file decodes, or one line names it
        paths = [str(f) for f in chunk]
        said = _predictions(model, paths)
        result = explain(model, paths, method, target, layer)
        out.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(chunk):
            stem = f"{path.stem}-{result.method}"
            name, n = stem, 1
            while name in used:
                n += 1
                name = f"{stem}-{n}"
            used.add(name)
            png = out / f"{name}.png"
            prob = None if result.probabilities is None else float(result.probabilities[i])
            title = f"{path.name}: {said[i]}"
            if target is not None:
                title += f"; explaining {result.target_names[i]}" + (f" ({prob:.1%})" if prob is not None else "")
            title += f"  [{result.method} at {result.layer}]"
            save_explanation_png(pictures[i], result.maps[i], png, title=title)
            records.append({"file": str(path), "png": str(png), "predicted": said[i],
                            "explained": result.target_names[i], "probability": prob, "layer": result.layer,
                            "method": result.method, "empty": result.empty[i]})
    return records


def features_png(run: str | os.PathLike[str], image: str | os.PathLike[str], layer: str | None,
                 out: str | os.PathLike[str], max_maps: int = 64) -> dict[str, Any]:
    """The feature maps of ``layer`` for one image file as a grid PNG."""
    from cnnlab.explain.core import as_input, device_of, resolve_layer

    model = _load(run)
    _picture(Path(image), int(model.preprocessing.get("channels", 3)))
    maps = feature_maps(model, [str(image)], layer)
    name = layer or resolve_layer(model.module, None, as_input(model, [str(image)]).to(device_of(model.module)))[0]
    title = f"{Path(image).name}: {len(maps)} feature maps of {name}, {maps.shape[1]}x{maps.shape[2]}"
    if len(maps) > max_maps:
        title += f" (first {max_maps})"
    feature_grid(maps, out, title=title, max_maps=max_maps)
    return {"png": str(out), "layer": name, "maps": int(len(maps)), "size": [int(maps.shape[1]), int(maps.shape[2])]}


def filters_png(run: str | os.PathLike[str], layer: str | None, out: str | os.PathLike[str],
                max_filters: int = 64) -> dict[str, Any]:
    """The weights of a convolutional layer (default the first) as a grid PNG; RGB filters in colour."""
    model = _load(run)
    name, weights = filters(model, layer)
    o, c, kh, kw = weights.shape
    title = f"{name}: {o} filters {kh}x{kw} over {c} channel(s)" + (f" (first {max_filters})" if o > max_filters else "")
    filter_grid(weights, out, title=title, max_filters=max_filters)
    return {"png": str(out), "layer": name, "filters": int(o), "channels": int(c), "kernel": [int(kh), int(kw)]}
