"""Reading and writing single images as float arrays in [0, 1].

:func:`read_image` reads anything Pillow decodes (gray, RGB, RGBA, palette,
16-bit, CMYK ...), turns it upright by its EXIF orientation, and returns float32
(H, W) for gray or (H, W, 3) for colour. :func:`write_image` maps an array of
any range to 8-bit explicitly (``clip``, ``minmax`` or ``abs``) and writes it
atomically. (Datasets have their own loader in ``cnnlab.data``.)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_path, path_kind
from cnnlab.ops.limits import brief

__all__ = ["draw_box", "read_image", "to_uint8", "writable_extensions", "write_image"]

# ITU-R BT.601 luma, the weights of Pillow's convert("L") and OpenCV's RGB2GRAY.
_LUMA = np.array([0.299, 0.587, 0.114])


def read_image(path: str | os.PathLike[str], mode: Literal["gray", "rgb"] | None = None) -> np.ndarray:
    """The image at ``path`` as float32 in [0, 1]: (H, W) for gray, (H, W, 3) for colour.

    ``mode="gray"`` converts colour with Y = 0.299 R + 0.587 G + 0.114 B;
    ``mode="rgb"`` repeats gray into three channels; ``None`` keeps what the file
    holds. Transparency is composited over white; 16-bit files keep their
    precision (divided by 65535); the EXIF orientation tag is applied.
    """
    if mode not in (None, "gray", "rgb"):
        raise CnnlabError(f"unknown mode {mode!r}", where="read_image", fix="use 'gray', 'rgb' or None")
    file = Path(path)
    where = _shown(file)
    kind = path_kind(file, where=where)  # a name too long for the file system ... is one clear error there
    if kind == "missing":
        raise CnnlabError("no such file", where=where, fix="check the path (and the current folder)")
    if kind != "file":
        raise CnnlabError("is not a file", where=where, fix="give the path of an image file, not a folder")
    try:
        with warnings.catch_warnings():
            # Pillow warns above 89 M pixels and raises above twice that: both are refused here, as one error.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(file) as opened:
                picture = ImageOps.exif_transpose(opened)
                picture.load()
                array = _to_float(picture)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise CnnlabError(
            f"is too large to decode safely: {str(error).split(', could be')[0]}",
            where=where,
            fix="give a smaller image (resize it first)",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, MemoryError) as error:
        raise CnnlabError(
            f"cannot be read as an image ({type(error).__name__}: {str(error)[:120]})",
            where=where,
            fix="give a PNG, JPEG, BMP, TIFF ... file that an image viewer opens",
        ) from None
    if mode == "gray" and array.ndim == 3:
        array = (array @ _LUMA).astype(np.float32)
    elif mode == "rgb" and array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return np.ascontiguousarray(array, dtype=np.float32)


def _shown(path: Path) -> str:
    """The path as an error shows it: cut when it is very long."""
    text = str(path)
    return text if len(text) <= 120 else brief(text, 120)


def writable_extensions() -> list[str]:
    """The file extensions Pillow can write here (.png, .jpg, .bmp, .tif ...), sorted."""
    Image.init()
    return sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE)


def _common_writable() -> list[str]:
    common = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".tga")
    return [ext for ext in common if ext in writable_extensions()]


def _to_float(picture: Image.Image) -> np.ndarray:
    """Pillow image -> float (H, W) or (H, W, 3) in [0, 1]."""
    if picture.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(picture, dtype=np.float64) / 65535.0
    if picture.mode == "I":  # 32-bit int; PNG 16-bit gray often arrives like this
        values = np.asarray(picture, dtype=np.float64)
        return values / (65535.0 if values.max(initial=0) <= 65535 else float(2**31 - 1))
    if picture.mode == "F":
        return np.asarray(picture, dtype=np.float64)
    if picture.mode in ("1", "L"):
        return np.asarray(picture.convert("L"), dtype=np.float64) / 255.0
    has_alpha = picture.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        picture.mode == "P" and "transparency" in picture.info
    )
    if has_alpha:
        rgba = np.asarray(picture.convert("RGBA"), dtype=np.float64) / 255.0
        alpha = rgba[:, :, 3:]
        rgb = rgba[:, :, :3] * alpha + (1.0 - alpha)  # over white
        if picture.mode in ("LA", "La"):
            return rgb[:, :, 0]
        return rgb
    rgb = np.asarray(picture.convert("RGB"), dtype=np.float64) / 255.0
    if picture.mode == "P" and (rgb == rgb[:, :, :1]).all():
        return rgb[:, :, 0]  # a palette of grays is a gray image
    return rgb


def to_uint8(array: Any, scale: Literal["clip", "minmax", "abs"] = "clip") -> np.ndarray:
    """Map a float image to 0..255: ``clip`` to [0, 1]; ``minmax`` (a - min)/(max - min);
    ``abs`` |a| / max|a| (edge maps, where the sign is the direction)."""
    values = array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise CnnlabError("contains NaN or infinity", where="image to write", fix="check the filter that produced it")
    if scale == "clip":
        values = np.clip(values, 0.0, 1.0)
    elif scale == "minmax":
        low, high = (values.min(), values.max()) if values.size else (0.0, 1.0)
        values = (values - low) / (high - low) if high > low else np.zeros_like(values)
    elif scale == "abs":
        values = np.abs(values)
        top = values.max() if values.size else 0.0
        values = values / top if top > 0 else values
    else:
        raise CnnlabError(f"unknown scale {scale!r}", where="scale", fix="use clip, minmax or abs")
    return np.round(values * 255.0).astype(np.uint8)


def write_image(
    path: str | os.PathLike[str],
    array: Any,
    scale: Literal["clip", "minmax", "abs"] = "clip",
) -> Path:
    """Write (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) floats as an 8-bit image, atomically.

    The format follows the suffix (PNG recommended: lossless). See
    :func:`to_uint8` for ``scale``. Returns the path.
    """
    target = Path(path)
    Image.init()
    image_format = Image.registered_extensions().get(target.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        what = "unknown image extension" if image_format is None else f"{image_format} images cannot be written, extension"
        raise CnnlabError(
            f"{what} {target.suffix!r}",
            where=_shown(target),
            fix=f"name the output file .png (lossless) or another writable extension: {' '.join(_common_writable())}",
        )
    pixels = to_uint8(array, scale)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4))) or min(pixels.shape) < 1:
        raise CnnlabError(
            f"cannot be written: shape {pixels.shape} is not (H, W), (H, W, 3) or (H, W, 4)",
            where=str(target),
            fix="write one gray or colour image",
        )
    picture = Image.fromarray(pixels)
    if image_format == "JPEG" and picture.mode == "RGBA":
        picture = picture.convert("RGB")
    try:
        with atomic_path(target) as tmp:
            picture.save(tmp, format=image_format)
    except (OSError, ValueError) as error:  # ValueError: Pillow's "cannot write mode ... as ..."
        reason = getattr(error, "strerror", None) or str(error)[:120]
        raise CnnlabError(f"cannot be written ({reason})", where=_shown(target), fix="check the folder exists and is writable, and the name is not a folder") from None
    return target


def draw_box(image: Any, x: int, y: int, width: int, height: int, color: tuple[float, float, float] = (1.0, 0.0, 0.0), thickness: int = 2) -> np.ndarray:
    """A colour copy of ``image`` ((H, W) or (H, W, 3), [0, 1]) with a rectangle outline.

    The box covers columns x..x+width-1 and rows y..y+height-1; the outline is
    drawn inside it.
    """
    values = np.asarray(image, dtype=np.float32)
    canvas = np.repeat(values[:, :, None], 3, axis=2) if values.ndim == 2 else values[:, :, :3].copy()
    canvas = np.clip(canvas, 0.0, 1.0)
    bottom, right = y + height, x + width
    t = max(1, min(thickness, height, width))
    paint = np.asarray(color, dtype=np.float32)
    canvas[y : y + t, x:right] = paint
    canvas[bottom - t : bottom, x:right] = paint
    canvas[y:bottom, x : x + t] = paint
    canvas[y:bottom, right - t : right] = paint
    return canvas
