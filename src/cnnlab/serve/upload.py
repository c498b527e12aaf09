"""What a client sends, checked before any pixel reaches the model: multipart parsing and strict decoding.

Everything stays in memory: the request body is read up to the upload limit
and parsed with python-multipart's streaming parser (Starlette's form parser
would spool files over 1 MB to a temporary file, and nothing a client sends is
written to disk). Each image is probed from its header before it is decoded, so
a decompression bomb is refused before its pixels are allocated.

A served model is stricter than ``cnnlab predict`` on purpose: an image whose
meaning is ambiguous (which frame of an animation? which of 65,536 grey levels
does 255 mean? CMYK's ink model) is refused with a fix rather than guessed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

MAX_PIXELS = 40_000_000  # 8000 x 5000: a large photo; anything above is refused as a bomb
MAX_ASPECT = 20.0  # longer side / shorter side; a 1 x 50000 strip stretched to a square means nothing
MAX_FILES = 64
FIELD = "file"
WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F", "I;32", "I;32B"}


class ApiError(Exception):
    """A client's mistake: HTTP ``status`` with JSON ``{"error": ..., "fix": ...}``."""

    def __init__(self, status: int, error: str, fix: str) -> None:
        super().__init__(error)
        self.status, self.error, self.fix = status, error, fix


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """The parts of a ``multipart/form-data`` body, in memory."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ApiError(415, f"the request is {content_type or 'without a content type'}, not multipart/form-data",
                       f"send the images as a multipart form with the field '{FIELD}' "
                       f"(curl -F {FIELD}=@picture.png URL)")
    parts: list[Part] = []
    state: dict[str, object] = {}
    chunks: list[bytes] = []
    headers: dict[bytes, bytes] = {}
    field: list[bytes] = []
    value: list[bytes] = []

    def on_part_begin() -> None:
        chunks.clear()
        headers.clear()
        state["open"] = True

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.append(data[start:end])

    def on_header_end() -> None:
        headers[b"".join(field).lower()] = b"".join(value)
        field.clear()
        value.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunks.append(data[start:end])

    def on_part_end() -> None:
        state["open"] = False
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        ctype = headers.get(b"content-type")
        parts.append(Part(name, filename.decode("utf-8", "replace") if filename is not None else None,
                          ctype.decode("latin-1") if ctype else None, b"".join(chunks)))
        state["parts"] = len(parts)
        if len(parts) > MAX_FILES + 8:
            raise ApiError(413, f"more than {MAX_FILES} parts in one request", f"send at most {MAX_FILES} images per request")

    callbacks = {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                 "on_header_value": on_header_value, "on_header_end": on_header_end,
                 "on_part_data": on_part_data, "on_part_end": on_part_end}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except ApiError:
        raise
    except Exception as error:  # python-multipart raises its own MultipartParseError and ValueErrors
        raise ApiError(400, f"the multipart body is malformed ({str(error)[:120]})",
                       "send a well-formed multipart/form-data body (let your HTTP client build it)") from None
    if state.get("open"):  # the parser drops a part cut off before its boundary: say so, not "no field 'file'"
        raise ApiError(400, "the multipart body ends inside a part (no closing boundary): a cut-off upload",
                       "send the whole body (let your HTTP client build it)")
    return parts


def image_parts(parts: list[Part]) -> list[Part]:
    """The ``file`` fields, or a 422 naming the fields that were sent."""
    files = [p for p in parts if p.name == FIELD]
    if not files:
        sent = ", ".join(sorted({repr(p.name) for p in parts})) or "none"
        raise ApiError(422, f"no form field named '{FIELD}' (fields sent: {sent})",
                       f"send each image in a form field named '{FIELD}' (curl -F {FIELD}=@picture.png URL)")
    if len(files) > MAX_FILES:
        raise ApiError(413, f"{len(files)} images in one request (at most {MAX_FILES})",
                       f"send at most {MAX_FILES} images per request")
    return files


def probe_upload(data: bytes, label: str, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Check an upload from its header; returns its (height, width) or raises :class:`ApiError`."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ApiError(400, f"{label}: the file is empty", "send the image's bytes, not an empty file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            mode = image.mode
            frames = int(getattr(image, "n_frames", 1) or 1)
    except Image.DecompressionBombError:
        raise ApiError(413, f"{label}: a decompression bomb (more pixels than Pillow's limit)",
                       f"send an image of at most {max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        declared = _declared_size(data)
        if declared is not None and 0 in declared:  # Pillow does not identify an image without pixels
            raise ApiError(422, f"{label}: the image is {declared[1]}x{declared[0]} pixels (no pixels)",
                           "send an image with pixels") from None
        raise ApiError(415, f"{label}: not an image (no PNG, JPEG, GIF, BMP, TIFF or WebP header)",
                       "send an image file") from None
    except Exception as error:  # Pillow's plugins raise OSError, SyntaxError, ValueError, struct.error ...
        raise ApiError(400, f"{label}: truncated or corrupt image header ({str(error)[:100]})",
                       "send the complete image file") from None
    if width <= 0 or height <= 0:
        raise ApiError(422, f"{label}: the image is {width}x{height} pixels (no pixels)", "send an image with pixels")
    if width * height > max_pixels:
        raise ApiError(413, f"{label}: {width}x{height} pixels is over the limit of {max_pixels:,} (a decompression bomb?)",
                       f"resize it to at most {max_pixels:,} pixels")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ApiError(422, f"{label}: {width}x{height} is too elongated (aspect ratio over {MAX_ASPECT:g}:1) to "
                            "be stretched to the model's square input", "crop the image to the region to classify")
    if frames > 1:
        raise ApiError(415, f"{label}: an animated image ({frames} frames); which frame to classify is ambiguous",
                       "send one frame as a still PNG or JPEG")
    if mode in WIDE_MODES:
        raise ApiError(415, f"{label}: a {mode} image (more than 8 bits per channel); the model was trained on 8-bit images",
                       "convert it to 8-bit (e.g. PIL: image.point(lambda v: v / 257).convert('L'))")
    if mode == "CMYK":
        raise ApiError(415, f"{label}: a CMYK image (print colours); the model takes RGB or grey",
                       "convert it to RGB (e.g. PIL: image.convert('RGB'))")
    return height, width


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) a PNG or GIF header declares, read by hand; None for other files."""
    import struct

    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return height, width
    return None


def decode_upload(data: bytes, label: str, size: tuple[int, int], channels: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Check then decode one upload to uint8 (H, W, C) at ``size``, as training decoded its images."""
    from cnnlab.data.decode import BadImage, decode_image

    probe_upload(data, label, max_pixels)
    try:
        return decode_image(data, size, channels)
    except BadImage as bad:
        status = 413 if "bomb" in bad.reason else 400
        raise ApiError(status, f"{label}: {bad.reason}", "send the complete, uncorrupted image file") from None


def display_size(height: int, width: int, longest: int = 384) -> tuple[int, int]:
    """(H, W) with the longer side ``longest``: what the page shows the heat map at."""
    scale = longest / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))
