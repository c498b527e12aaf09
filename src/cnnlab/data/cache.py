"""Decode once: a list of image files becomes one memory-mapped uint8 array.

The array ``(N, H, W, C)`` is stored as ``.npy`` under ``<data root>/cache/images/``
with a ``.json`` beside it recording, for every source file, its row or the reason
it was skipped, and its original size and mode. The cache key is a hash of the
source files (absolute path, size in bytes, modification time in ns) and the
preprocessing (image size, channels, decode rules), so touching, replacing,
adding or removing a file decodes again, and nothing else does.

Writes are atomic: the ``.npy`` is filled in a temporary file and renamed, then the
``.json`` is written the same way; a reader trusts an entry only when the ``.json``
exists, so a crash half-way leaves no corrupt cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.data.decode import GRAY_MODES, BadImage, decode_with_info, probe
from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_path, atomic_write_text

# Bump when the decode rules change so old caches are not reused.
DECODE_VERSION = 1
DECODE_THREADS = min(4, os.cpu_count() or 1)
CHUNK = 256


@dataclass(frozen=True)
class SourceFile:
    """One image to decode: ``name`` is what reports show; bytes come from ``path`` or ``data``."""

    name: str
    path: str | Path | None = None
    data: bytes | None = None

    def stamp(self) -> list:
        if self.path is None:
            assert self.data is not None
            return [self.name, len(self.data), hashlib.sha1(self.data).hexdigest()]
        try:
            st = os.stat(self.path)
            # Callers build paths under an already resolved root: abspath is a cheap string op,
            # where resolve() would cost system calls per file on every cached open.
            return [os.path.abspath(self.path), st.st_size, st.st_mtime_ns]
        except OSError:
            return [str(self.path), -1, -1]

    def source(self) -> str | Path | bytes:
        return self.path if self.path is not None else self.data  # type: ignore[return-value]


@dataclass
class Decoded:
    """Result of :func:`decode_files`: images for the files that loaded, reasons for the rest."""

    images: np.ndarray  # (len(ok), H, W, C) uint8, memmap when cached
    ok: list[int]  # positions (in the input list) of the files that loaded, in order
    skipped: list[tuple[str, str]]  # (name, reason)
    sizes: Counter  # (height, width) of the originals that loaded
    modes: Counter  # Pillow modes of the originals that loaded
    from_cache: bool
    names: list[str]  # the name of every input file (so a cache hit needs no file list)


def decode_files(
    files: list[SourceFile] | Callable[[], list[SourceFile]],
    *,
    image_size: tuple[int, int] | None,
    channels: int | None,
    cache_folder: Path | None,
    label: str,
    progress: bool = False,
    stamp: list | None = None,
) -> Decoded:
    """Decode ``files`` once, or map the cached array when nothing changed.

    ``image_size`` None: the most common (H, W) among the originals (ties: the
    largest). ``channels`` None: 1 when every image is gray, else 3. ``stamp``
    replaces the per-file stamps in the cache key when one thing identifies all
    files (an archive's path, size and mtime); ``files`` may then be a function,
    called only on a cache miss, so a hit does not even read the archive.
    """
    if stamp is None:
        if callable(files):
            files = files()
        stamp = [f.stamp() for f in files]
    key_data = {
        "version": DECODE_VERSION,
        "size": list(image_size) if image_size else None,
        "channels": channels,
        "files": stamp,
    }
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:24]
    # One slug per (source, preprocessing): a new decode replaces older entries of the
    # same slug only, so two image sizes of one folder can live side by side.
    slug = _slug(f"{label}|{image_size}|{channels}")
    if cache_folder is not None:
        hit = _load(cache_folder, slug, key, None if callable(files) else len(files))
        if hit is not None:
            return hit
    if callable(files):
        files = files()
    decoded = _decode_all(files, image_size, channels, progress=progress, label=label)
    if cache_folder is not None and len(decoded.ok):
        try:
            decoded = _store(cache_folder, slug, key, decoded, len(files))
        except OSError as error:
            warnings.warn(f"could not write the image cache in {cache_folder} ({error}); decoding in memory only",
                          stacklevel=2)
    return decoded


def _slug(label: str) -> str:
    digest = hashlib.sha256(label.encode()).hexdigest()[:10]
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(label.split("|")[0]).name or "data")[:40]
    return f"{tail}-{digest}"


def _decode_all(files, image_size, channels, *, progress: bool, label: str) -> Decoded:
    infos: list[tuple[int, int, str, str] | None] = [None] * len(files)
    skipped: dict[int, str] = {}
    candidates = list(range(len(files)))
    if image_size is None or channels is None:
        # The target size / channels depend on every file: read all headers first.
        for i, f in enumerate(files):
            try:
                infos[i] = probe(f.source())
            except BadImage as bad:
                skipped[i] = bad.reason
        sizes = Counter((p[0], p[1]) for p in infos if p is not None)
        modes = Counter(p[2] for p in infos if p is not None)
        if image_size is None and sizes:
            image_size = max(sizes, key=lambda hw: (sizes[hw], hw[0] * hw[1]))
        if channels is None:
            channels = 1 if modes and all(m in GRAY_MODES for m in modes) else 3
        candidates = [i for i in candidates if i not in skipped]
    h, w = image_size if image_size else (1, 1)
    check_fits_in_memory(len(candidates), h, w, channels, label)
    images = np.zeros((len(candidates), h, w, channels), dtype=np.uint8)

    def work(chunk: list[int]) -> list[tuple[int, np.ndarray | None, tuple | str]]:
        out = []
        for i in chunk:
            try:
                array, info = decode_with_info(files[i].source(), (h, w), channels)
                out.append((i, array, info))
            except BadImage as bad:
                out.append((i, None, bad.reason))
        return out

    # Pillow releases the GIL while decoding: two threads gain ~25% on small JPEGs.
    chunks = [candidates[k : k + CHUNK] for k in range(0, len(candidates), CHUNK)]
    ok: list[int] = []
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        results = pool.map(work, chunks)
        for chunk in _progress(results, label, len(chunks)) if progress else results:
            for i, array, info in chunk:
                if array is None:
                    skipped[i] = info  # type: ignore[assignment]
                else:
                    images[len(ok)], infos[i] = array, info  # type: ignore[assignment]
                    ok.append(i)
    images = images[: len(ok)]
    sizes = Counter((infos[i][0], infos[i][1]) for i in ok)  # type: ignore[index]
    modes = Counter(infos[i][2] for i in ok)  # type: ignore[index]
    return Decoded(images, ok, [(files[i].name, r) for i, r in sorted(skipped.items())], sizes, modes, False,
                   [f.name for f in files])


def check_fits_in_memory(n: int, h: int, w: int, c: int, label: str) -> None:
    """Refuse a decode whose uint8 array would not fit in 80% of this machine's memory
    (an image size typed with a zero too many would otherwise end in the OOM killer)."""
    need = n * h * w * c
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no bound known
        return
    if need > 0.8 * total:
        raise CnnlabError(f"{n} images of {h}x{w}x{c} need {need / 2**30:.1f} GiB decoded, more than 80% of this "
                          f"machine's {total / 2**30:.1f} GiB", where=Path(label.split("|")[0]).name or label,
                          fix="ask for a smaller image size (data.image_size), or use fewer images")


def _progress(items, label, total):
    from rich.progress import track

    return track(items, total=total, description=f"decoding {Path(label.split('|')[0]).name}", transient=True)


def _paths(folder: Path, slug: str, key: str) -> tuple[Path, Path]:
    return folder / "images" / f"{slug}-{key}.npy", folder / "images" / f"{slug}-{key}.json"


def _store(folder: Path, slug: str, key: str, decoded: Decoded, n_files: int) -> Decoded:
    npy, meta = _paths(folder, slug, key)
    with atomic_path(npy) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=decoded.images.shape)
        out[:] = decoded.images
        out.flush()
        del out
    record = {
        "version": DECODE_VERSION,
        "n_files": n_files,
        "ok": decoded.ok,
        "skipped": decoded.skipped,
        "sizes": [[h, w, c] for (h, w), c in decoded.sizes.items()],
        "modes": dict(decoded.modes),
        "names": decoded.names,
    }
    atomic_write_text(meta, json.dumps(record))
    # Older entries for the same source are stale now: remove them (cache files only).
    for old in (folder / "images").glob(f"{slug}-*"):
        if old.name not in (npy.name, meta.name) and not old.name.startswith("."):
            old.unlink(missing_ok=True)
    mapped = np.load(npy, mmap_mode="r")
    return Decoded(mapped, decoded.ok, decoded.skipped, decoded.sizes, decoded.modes, False, decoded.names)


def _load(folder: Path, slug: str, key: str, n_files: int | None) -> Decoded | None:
    npy, meta = _paths(folder, slug, key)
    try:
        record = json.loads(meta.read_text())
        images = np.load(npy, mmap_mode="r")
    except (OSError, ValueError):
        return None
    names = record.get("names")
    if (n_files is not None and record.get("n_files") != n_files) or images.shape[0] != len(record["ok"]) \
            or not isinstance(names, list) or len(names) != record.get("n_files"):
        return None
    return Decoded(
        images=images,
        ok=record["ok"],
        skipped=[tuple(s) for s in record["skipped"]],  # type: ignore[misc]
        sizes=Counter({(h, w): c for h, w, c in record["sizes"]}),
        modes=Counter(record["modes"]),
        from_cache=True,
        names=names,
    )


def clear_cache(folder: Path) -> int:
    """Delete every cached array under ``folder``; returns how many files went."""
    count = 0
    for entry in (folder / "images").glob("*"):
        if entry.suffix in (".npy", ".json"):
            os.remove(entry)
            count += 1
    return count
