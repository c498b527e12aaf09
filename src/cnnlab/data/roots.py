"""Where data lives: the data root and the cache folder.

Lookup order: the ``root`` argument (``--data DIR``), else ``$CNNLAB_DATA``, else
``~/.cache/cnnlab``. Built-in sets sit in subfolders of the root (``mnist/``,
``fashion-mnist/``, ``cifar10/`` ...); the decode-once cache in ``cache/`` under
it. cnnlab writes only into the cache folder, never into a user's image folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from cnnlab.errors import CnnlabError
from cnnlab.files import path_kind, writable_folder


def data_root(root: str | os.PathLike[str] | None = None, *, create: bool = False) -> Path:
    """The data root: ``root``, else ``$CNNLAB_DATA``, else ``~/.cache/cnnlab``.

    A ``root`` given explicitly must be an existing folder (a mistyped ``--data``
    is refused, not silently created) unless ``create`` (``cnnlab data download``,
    whose purpose is to fill it).
    """
    if root is not None and not str(root).strip():  # '' would be the current folder, unasked
        raise CnnlabError("is empty", where="--data", fix="give the data root folder, or leave --data out to use $CNNLAB_DATA or ~/.cache/cnnlab")
    if root is not None:
        path = Path(root).expanduser()
        kind = path_kind(path, where=f"--data {root}")
        if kind == "missing" and not create:
            raise CnnlabError("no such data root folder", where=f"--data {root}",
                              fix="give an existing folder (the one that holds mnist/, cifar10/ ...), or leave "
                                  "--data out to use $CNNLAB_DATA or ~/.cache/cnnlab")
        if kind not in ("dir", "missing"):
            raise CnnlabError("is a file, not a data root folder", where=f"--data {root}",
                              fix="give the folder that holds mnist/, cifar10/ ...")
        return path
    env = os.environ.get("CNNLAB_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "cnnlab"


def cache_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Folder for decoded arrays. ``$CNNLAB_CACHE`` overrides it, for read-only data roots.

    When the data root is read-only (a shared data folder), the cache falls back to
    ``$CNNLAB_DATA`` / ``~/.cache/cnnlab`` so that a read-only root still works.
    """
    env = os.environ.get("CNNLAB_CACHE")
    if env:
        return Path(env).expanduser()
    first = data_root(root, create=True) / "cache"  # open_dataset has checked an explicit root
    if _writable(first):
        return first
    return data_root(None) / "cache"


def _writable(folder: Path) -> bool:
    """Whether cnnlab may create ``folder`` (see :func:`cnnlab.files.writable_folder`)."""
    return writable_folder(folder)
