"""The CIFAR-10 / CIFAR-100 "python version" archives, read without trusting pickle.

The batches are pickled dicts; they are read with an unpickler that can build
nothing but plain containers and numpy arrays, so a tampered archive cannot run
code. Accepted: the ``.tar.gz`` itself (read in place) or its extracted folder.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError

LAYOUT = {
    "cifar10": {
        "archive": "cifar-10-python.tar.gz",
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels": b"labels",
        "names": b"label_names",
    },
    "cifar100": {
        "archive": "cifar-100-python.tar.gz",
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels": b"fine_labels",
        "names": b"fine_label_names",
    },
}

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict:
    try:
        value = _SafeUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as error:  # any failure of a damaged or hostile file is the user's to fix
        raise CnnlabError(f"is not a CIFAR python batch ({error})", where=where,
                          fix="use the original cifar-*-python.tar.gz archive") from None
    if not isinstance(value, dict):
        raise CnnlabError("is not a CIFAR python batch (not a dict)", where=where,
                          fix="use the original cifar-*-python.tar.gz archive")
    return value


def find_cifar(name: str, folder: Path) -> Path | None:
    """The archive or extracted folder of ``name`` inside ``folder``, if present."""
    layout = LAYOUT[name]
    for candidate in (folder / layout["archive"], folder / layout["folder"]):
        if candidate.exists():
            return candidate
    return None


def read_cifar(name: str, source: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(images (N, 32, 32, 3) uint8, labels int64, class names)`` of one split."""
    layout = LAYOUT[name]
    wanted = [layout["meta"], *layout[split]]
    blobs = _read_members(source, wanted)
    meta = _unpickle(blobs[layout["meta"]], f"{source}:{layout['meta']}")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(layout["names"], [])]
    images, labels = [], []
    for member in layout[split]:
        batch = _unpickle(blobs[member], f"{source}:{member}")
        try:
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            label = np.asarray(batch[layout["labels"]], dtype=np.int64)
        except (KeyError, ValueError) as error:
            raise CnnlabError(f"batch {member} lacks data or labels ({error})", where=str(source),
                              fix="use the original cifar-*-python.tar.gz archive") from None
        images.append(data.transpose(0, 2, 3, 1))  # stored channel-first: (N, 3, 32, 32) -> (N, 32, 32, 3)
        labels.append(label)
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels), classes


def _read_members(source: Path, names: list[str]) -> dict[str, bytes]:
    from cnnlab.data.folders import archive_reason

    found: dict[str, bytes] = {}
    if source.is_dir():
        for name in names:
            path = source / name
            if path.is_file():
                found[name] = path.read_bytes()
    else:
        try:
            with tarfile.open(source, "r:*") as tar:
                for member in tar:
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in names:
                        handle = tar.extractfile(member)
                        found[base] = handle.read() if handle else b""
        except (tarfile.TarError, OSError, EOFError) as error:
            raise CnnlabError(f"cannot read the archive ({archive_reason(error)})", where=str(source),
                              fix="replace it with a complete copy of the original archive") from None
    missing = [n for n in names if n not in found]
    if missing:
        raise CnnlabError(f"lacks {', '.join(missing)}", where=str(source),
                          fix="use the complete original cifar-*-python archive")
    return found
