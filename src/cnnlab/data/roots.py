"""Where data lives: the data root and the cache folder.

Lookup order: the ``root`` argument (``--data DIR``), else ``$CNNLAB_DATA``, else
``~/.cache/cnnlab``. Built-in sets sit in subfolders of the root (``mnist/``,
``fashion-mnist/``, ``cifar10/`` ...); the decode-once cache in ``cache/`` under
it. cnnlab writes only into the cache folder, never into a user's image folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root``, else ``$CNNLAB_DATA``, else ``~/.cache/cnnlab``."""
    if root is not None:
        return Path(root).expanduser()
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
    first = data_root(root) / "cache"
    if _writable(first):
        return first
    return data_root(None) / "cache"


def _writable(folder: Path) -> bool:
    """Whether cnnlab may create ``folder``: its nearest existing ancestor must be writable
    AND not marked read-only. The mode check matters for root, to whom os.access says yes
    even on a folder its owner made read-only (a shared data set)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    try:
        read_only = not (probe.stat().st_mode & stat.S_IWUSR)
    except OSError:
        return False
    return not read_only and os.access(probe, os.W_OK)
