"""Decoding one image file into a uint8 array, the same way for training and predict.

Conversion rules (documented, and applied identically at predict time):

- EXIF orientation is applied first (a phone photo shot sideways loads upright).
- Transparency (RGBA, LA, palette or gray with a transparent colour) is composited
  over WHITE: icons and scans with transparent backgrounds look as they do in a
  viewer, and transparent pixels do not leak whatever colour they hide.
- 16-bit and 32-bit integer images (``I;16``, ``I``) are scaled to 8 bits by /257
  (65535 -> 255); float images (``F``) are clipped to 0..255.
- Palette, CMYK, YCbCr, 1-bit ... go through Pillow's own conversion.
- ``channels`` 1 gives luminance (ITU-R 601-2, Pillow's ``L``), 3 gives RGB.
- Resizing to ``(H, W)`` stretches (no crop, like Keras ``target_size``) with
  Pillow's antialiased bilinear filter.
- Animated GIF / multi-page TIFF: the first frame.

A file that cannot be used raises :class:`BadImage` with a short reason.
"""

from __future__ import annotations

import io
import os
import warnings
import zlib
from pathlib import Path
from struct import error as struct_error
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnlab.errors import CnnlabError

# Damaged metadata (a TIFF tag, an EXIF block) does not stop the pixels from decoding:
# Pillow's UserWarnings about it would only flood a folder's report.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.(TiffImagePlugin|Image|JpegImagePlugin|PngImagePlugin)")

# Reasons a file is skipped; short, stable strings (tests and reports use them).
EMPTY = "empty file"
TRUNCATED = "truncated or corrupt image data"
NOT_AN_IMAGE = "not an image Pillow can read"
BOMB = "decompression bomb (more pixels than Pillow's limit)"
UNREADABLE = "unreadable"

BACKGROUND = (255, 255, 255)  # transparency is composited over white

# Gray-only modes: everything else is treated as colour.
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class BadImage(Exception):
    """A file that cannot be used as an image; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason + (f": {detail}" if detail else ""))
        self.reason = reason
        self.detail = detail


def _open(source: str | Path | bytes | IO[bytes]) -> Image.Image:
    """Open lazily (header only) and turn Pillow's exceptions into reasons."""
    if isinstance(source, bytes):
        if not source:
            raise BadImage(EMPTY)
        source = io.BytesIO(source)
    elif isinstance(source, (str, Path)):
        try:
            if os.stat(source).st_size == 0:
                raise BadImage(EMPTY)
        except OSError as error:
            raise BadImage(UNREADABLE, error.strerror or str(error)) from None
        except ValueError:  # a NUL byte in the name
            raise BadImage(UNREADABLE, "not a valid path") from None
    try:
        image = Image.open(source)
    except Image.DecompressionBombError as error:
        raise BadImage(BOMB, str(error)) from None
    except UnidentifiedImageError:
        raise BadImage(NOT_AN_IMAGE) from None
    except (PermissionError, IsADirectoryError, FileNotFoundError) as error:
        raise BadImage(UNREADABLE, error.strerror or str(error)) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct_error) as error:
        raise BadImage(TRUNCATED, str(error)) from None
    except Exception as error:  # any other failure of a damaged or hostile file (Pillow's plugins vary)
        raise BadImage(TRUNCATED, f"{type(error).__name__}: {error}") from None
    # Pillow only warns between 1x and 2x its pixel limit (and raises above): both are
    # bombs here. Checked by hand because warnings.catch_warnings is not thread-safe.
    limit = Image.MAX_IMAGE_PIXELS
    if limit and image.size[0] * image.size[1] > limit:
        image.close()
        raise BadImage(BOMB, f"{image.size[0]}x{image.size[1]} pixels, limit {limit}")
    return image


def probe(source: str | Path | bytes | IO[bytes]) -> tuple[int, int, str, str]:
    """``(height, width, mode, format)`` from the header only (upright, EXIF applied)."""
    with _open(source) as image:
        width, height = image.size
        try:
            orientation = image.getexif().get(0x0112, 1)
        except Exception:  # a broken EXIF block is not worth skipping the image for
            orientation = 1
        if orientation in (5, 6, 7, 8):  # 90 or 270 degrees: width and height swap
            width, height = height, width
        return height, width, image.mode, image.format or "?"


def decode_image(
    source: str | Path | bytes | IO[bytes],
    image_size: tuple[int, int] | None = None,
    channels: int = 3,
) -> np.ndarray:
    """Decode a file into ``(H, W, channels)`` uint8, resized to ``image_size`` (H, W) if given."""
    return decode_with_info(source, image_size, channels)[0]


def decode_with_info(
    source: str | Path | bytes | IO[bytes],
    image_size: tuple[int, int] | None,
    channels: int,
) -> tuple[np.ndarray, tuple[int, int, str, str]]:
    """:func:`decode_image` plus what :func:`probe` says of the original: ``(h, w, mode, format)``."""
    if channels not in (1, 3):
        raise CnnlabError(f"channels must be 1 or 3, got {channels!r}", where="channels", fix="use 1 (gray) or 3 (RGB)")
    image = original = _open(source)
    try:
        image.load()
        mode, fmt = image.mode, image.format or "?"
        image = ImageOps.exif_transpose(image)
        height, width = image.size[1], image.size[0]
        image = _to_mode(image, "L" if channels == 1 else "RGB")
        if image_size is not None and (image.size[1], image.size[0]) != tuple(image_size):
            image = image.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    except BadImage:
        raise
    except Image.DecompressionBombError as error:
        raise BadImage(BOMB, str(error)) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, zlib.error, struct_error) as error:
        raise BadImage(TRUNCATED, str(error)) from None
    except MemoryError:
        raise BadImage(BOMB, "not enough memory to decode it") from None
    except Exception as error:  # any other failure of a damaged or hostile file
        raise BadImage(TRUNCATED, f"{type(error).__name__}: {error}") from None
    finally:
        original.close()
    return array.reshape(array.shape[0], array.shape[1], channels), (height, width, mode, fmt)


def _to_mode(image: Image.Image, target: str) -> Image.Image:
    """Convert any Pillow mode to ``L`` or ``RGB`` following the rules in the module docstring."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        values = values / 257.0 if mode != "F" else values
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
        mode = "L"
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == target else image.convert(target)
