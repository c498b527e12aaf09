"""Fixtures for the data tests: real-world odd image files, made here, tiny."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import decode as dec


def png_bomb() -> bytes:
    """A valid-looking PNG whose header claims 30000 x 30000 pixels (9e8, over Pillow's limit)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def save(path: Path, image: Image.Image, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def exif_rotated_jpeg() -> bytes:
    """Stored 8 high x 16 wide, left half black, right half white, EXIF orientation 6.

    Orientation 6 means "rotate 90 degrees clockwise to display": upright it is 16 x 8
    with the black half on top.
    """
    stored = np.zeros((8, 16, 3), dtype=np.uint8)
    stored[:, 8:] = 255
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


# What the odd folder holds: relative path -> expected outcome.
LOADED = [
    "cats/UPPER.JPG",
    "cats/cmyk.jpg",
    "cats/exif_rotated.jpg",
    "cats/gray.png",
    "cats/image.bmp",
    "cats/image.tiff",
    "cats/image.webp",
    "cats/la.png",
    "cats/palette.gif",
    "cats/palette_transparent.png",
    "cats/rgb.jpg",
    "cats/rgba.png",
    "cats/sixteen.png",
    "dogs/dog.jpeg",
    "dogs/nested/deep.png",
]
SKIPPED = {
    "cats/bomb.png": dec.BOMB,
    "cats/empty.jpg": dec.EMPTY,
    "cats/notimage.png": dec.NOT_AN_IMAGE,
    "cats/truncated.jpg": dec.TRUNCATED,
    "empty_class/broken.jpg": dec.NOT_AN_IMAGE,
}


def build_odd_folder(root: Path) -> Path:
    cats, dogs = root / "cats", root / "dogs"
    save(cats / "gray.png", Image.fromarray(np.full((8, 8), 100, np.uint8), "L"))
    save(cats / "rgb.jpg", Image.fromarray(noise(8, 8)), quality=95)
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 4:, 3] = 255  # left half fully transparent: must come out white
    save(cats / "rgba.png", Image.fromarray(rgba, "RGBA"))
    save(cats / "la.png", Image.fromarray(np.zeros((8, 8, 2), np.uint8), "LA"))  # transparent black -> white
    save(cats / "palette.gif", Image.fromarray(noise(8, 8, 1)).convert("P"))
    pal = Image.fromarray(noise(8, 8, 2)).convert("P")
    pal.info["transparency"] = 0
    save(cats / "palette_transparent.png", pal, transparency=0)
    save(cats / "cmyk.jpg", Image.new("CMYK", (8, 8), (0, 255, 255, 0)), quality=95)  # pure red
    sixteen = np.full((8, 8), 65535, np.uint16)
    sixteen[:, :4] = 32896  # 32896 / 257 = 128
    save(cats / "sixteen.png", Image.fromarray(sixteen))
    (cats / "exif_rotated.jpg").write_bytes(exif_rotated_jpeg())
    save(cats / "UPPER.JPG", Image.fromarray(noise(8, 8, 3)), format="JPEG")
    save(cats / "image.bmp", Image.fromarray(noise(8, 8, 4)))
    save(cats / "image.tiff", Image.fromarray(noise(8, 8, 5)))
    save(cats / "image.webp", Image.fromarray(noise(8, 8, 6)), lossless=True)
    # skipped, with reasons
    (cats / "empty.jpg").write_bytes(b"")
    full = io.BytesIO()
    Image.fromarray(noise(64, 64, 7)).save(full, format="JPEG")
    (cats / "truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    (cats / "notimage.png").write_text("this is a text file with an image name\n")
    (cats / "bomb.png").write_bytes(png_bomb())
    # ignored
    (cats / ".DS_Store").write_bytes(b"\0\0\0\1Bud1" + b"\0" * 20)
    (cats / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 20)
    (cats / "notes.txt").write_text("a note\n")
    (cats / "._rgb.jpg").write_bytes(b"\0\5\26\7AppleDouble")
    save(cats / ".ipynb_checkpoints" / "rgb-checkpoint.png", Image.fromarray(noise(8, 8, 8)))
    save(root / ".hidden_class" / "x.png", Image.fromarray(noise(8, 8, 9)))
    (root / "README.txt").write_text("my data set\n")
    # the other classes
    save(dogs / "dog.jpeg", Image.fromarray(noise(12, 10, 10)), quality=95)
    save(dogs / "nested" / "deep.png", Image.fromarray(noise(8, 8, 11)))
    (root / "empty_class").mkdir()
    (root / "empty_class" / "broken.jpg").write_text("not a jpeg")
    (root / "empty_class" / ".DS_Store").write_bytes(b"\0")
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under root with size, mtime and content hash."""
    state = {}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[path.relative_to(root).as_posix()] = (st.st_size if path.is_file() else 0, st.st_mtime_ns, digest)
    return state


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    return build_odd_folder(tmp_path / "odd")


def make_class_folder(root: Path, counts: dict[str, int], size: tuple[int, int] = (8, 8)) -> Path:
    """``root/<class>/<i>.png`` of distinct noise images."""
    seed = 0
    for name, count in counts.items():
        for i in range(count):
            save(root / name / f"{i:03d}.png", Image.fromarray(noise(*size, seed=seed)))
            seed += 1
    return root


@pytest.fixture
def kit():
    """The helpers above, for test modules (importlib mode cannot import conftest by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(LOADED=LOADED, SKIPPED=SKIPPED, make_class_folder=make_class_folder, noise=noise,
                           save=save, snapshot=snapshot, png_bomb=png_bomb)
