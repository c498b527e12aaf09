"""Image folders from the real world: one subfolder per class, optional train/ and test/ roots.

Layouts (first match wins):

- ``DIR/train/<class>/...`` and optionally ``DIR/test/<class>/...`` and
  ``DIR/val/`` (or ``validation/``): split roots; the class list comes from
  ``train/`` so indices agree across splits.
- ``DIR/<class>/...``: the whole folder is the training split.

Inside a class folder, images are found recursively. What is what:

- ignored silently: hidden files and folders (name starting with ``.``, e.g.
  ``.DS_Store``, ``.ipynb_checkpoints``), ``__MACOSX``, ``Thumbs.db``,
  ``desktop.ini``, and files whose extension is not an image extension;
- skipped with a reason (:mod:`cnnlab.data.decode`): empty, truncated,
  not-an-image (an image extension on something else), decompression bomb;
- a class folder with no valid image: a :class:`DataWarning` naming it, the class
  is kept (indices stay stable) and listed in ``ImageSet.empty_classes``;
- no valid image at all: :class:`~cnnlab.errors.CnnlabError`.

Nothing is ever written to, moved in or deleted from the folder.
A ``.tar`` / ``.tar.gz`` of such a tree is read directly (members into memory).
"""

from __future__ import annotations

import json
import os
import tarfile
import warnings
from pathlib import Path, PurePosixPath

import numpy as np

from cnnlab.data.cache import Decoded, SourceFile, decode_files
from cnnlab.data.imageset import ImageSet
from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text

IMAGE_EXTENSIONS = {
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff",
    ".webp", ".ppm", ".pgm", ".pbm", ".pnm",
}
IGNORED_NAMES = {"thumbs.db", "desktop.ini", "ehthumbs.db", "__macosx"}
SPLIT_NAMES = {"train": ("train", "training"), "test": ("test", "testing"), "val": ("val", "valid", "validation")}


class DataWarning(UserWarning):
    """Something in a data set a user should know about (skipped files, empty classes)."""


def is_ignored(name: str) -> bool:
    """Hidden files and folders and the junk operating systems leave behind."""
    return name.startswith(".") or name.lower() in IGNORED_NAMES


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not is_ignored(name)


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not is_ignored(p.name))
    except OSError as error:
        raise CnnlabError(f"cannot list the folder ({error.strerror})", where=str(folder),
                          fix="check the path and its permissions") from None


def split_roots(folder: Path) -> dict[str, Path]:
    """``{"train": ..., "test": ..., "val": ...}`` for the split folders present (case-insensitive)."""
    found: dict[str, Path] = {}
    by_name = {p.name.lower(): p for p in _subdirs(folder)}
    for split, names in SPLIT_NAMES.items():
        for name in names:
            if name in by_name:
                found[split] = by_name[name]
                break
    return found


def available_splits(folder: Path) -> list[str]:
    """Splits a folder offers: ``["train"]`` for a plain class-per-folder tree."""
    roots = split_roots(folder)
    return sorted(roots) if "train" in roots else ["train"]


def _split_depth(parts: tuple[str, ...], split: str) -> int | None:
    """Where a tar member ``[top/]<split>/<class>/<file>`` has its ``split`` folder, or None."""
    names = SPLIT_NAMES.get(split, ())
    return next((depth for depth in range(len(parts) - 2) if parts[depth].lower() in names), None)


def tar_splits(archive: Path, cache_folder: Path | None = None) -> list[str]:
    """Splits a tar archive of a class-per-folder tree offers (``[top/]<split>/<class>/<image>``
    members), as :func:`available_splits` does for a folder; ``["train"]`` when it has no split
    folders or cannot be read (loading it then says why).

    Listing a ``.tar.gz`` decompresses all of it (about 2 s for CIFAR-10's copy), so the answer is
    kept in ``cache_folder/tar-splits.json`` under the archive's path, size and modification time:
    a training or evaluation that finds its images in the decode cache does not read the archive."""
    st = archive.stat()
    key = f"{archive.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    index = cache_folder / "tar-splits.json" if cache_folder is not None else None
    known: dict[str, list[str]] = {}
    if index is not None:
        try:
            known = json.loads(index.read_text(encoding="utf-8"))
            if key in known:
                return list(known[key])
        except (OSError, ValueError):
            known = {}
    found: set[str] = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:  # headers only: nothing is extracted
                parts = PurePosixPath(member.name).parts
                if member.isfile() and is_image_name(parts[-1]):
                    found.update(split for split in SPLIT_NAMES if _split_depth(parts, split) is not None)
    except (tarfile.TarError, OSError, EOFError):
        return ["train"]
    splits = sorted(found) if "train" in found else ["train"]
    if index is not None:
        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(index, json.dumps({**known, key: splits}, indent=1))
        except OSError:
            pass  # a read-only cache only costs the next call another listing
    return splits


def keras_order(name: str) -> tuple[str, str]:
    """Sort key of a relative path ``class/sub/file`` in Keras's order: its folder, then its name.

    Keras's ``flow_from_directory`` lists a class as ``sorted(os.walk(...))`` by folder,
    then the sorted names in each: a class folder's own files come before its
    subfolders' (``c/z.png`` before ``c/sub/a.png``), and ``c/sub-2`` before
    ``c/sub/deeper`` ('-' sorts before '/'). Neither a depth-first walk nor sorting
    whole paths gives that order.
    """
    folder, _, file = name.replace(os.sep, "/").rpartition("/")
    return folder, file


def walk_images(folder: Path) -> list[str]:
    """Image files under ``folder``, recursively, as path strings (pathlib is too slow for
    100,000 files on every cached open), in Keras's order (:func:`keras_order`)."""
    found = []
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not is_ignored(d)]
        found.append((top, sorted(n for n in names if is_image_name(n))))
    found.sort(key=lambda entry: entry[0])  # the folders' whole paths, as Keras sorts os.walk's roots
    return [os.path.join(top, n) for top, names in found for n in names]


def load_folder(
    folder: Path,
    *,
    split: str = "train",
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    cache_folder: Path | None = None,
    progress: bool = False,
) -> ImageSet:
    """Load a class-per-folder tree (see the module docstring) as an :class:`ImageSet`."""
    if not folder.is_dir():
        raise CnnlabError("is not a folder", where=str(folder), fix="give a folder with one subfolder per class")
    roots = split_roots(folder)
    if "train" in roots:
        if split not in roots:
            raise CnnlabError(f"has no {split}/ folder (found {', '.join(sorted(roots))})", where=str(folder),
                              fix=f"add {folder}/{split}/<class>/... or use another split")
        classes = [p.name for p in _subdirs(roots["train"])]
        class_root = roots[split]
    else:
        if split != "train":
            raise CnnlabError(f"has no {split}/ folder: it is a plain class-per-folder tree", where=str(folder),
                              fix=f"put the {split} images in {folder}/{split}/<class>/ and the training images in "
                                  f"{folder}/train/<class>/, or split the training set with a validation fraction")
        classes = [p.name for p in _subdirs(folder)]
        class_root = folder
    if not classes:
        raise CnnlabError("has no class subfolders", where=str(class_root),
                          fix="put the images of each class in their own subfolder, e.g. cats/ and dogs/")
    class_root = class_root.resolve()
    present = [p.name for p in _subdirs(class_root)]
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise CnnlabError(f"has class folders that train/ lacks: {', '.join(unknown)}", where=str(class_root),
                          fix="use the same class folder names in every split")
    files: list[SourceFile] = []
    labels: list[int] = []
    prefix = len(str(class_root)) + 1
    for index, name in enumerate(classes):
        for path in walk_images(class_root / name) if (class_root / name).is_dir() else []:
            files.append(SourceFile(path[prefix:].replace(os.sep, "/"), path=path))
            labels.append(index)
    decoded = decode_files(files, image_size=image_size, channels=channels, cache_folder=cache_folder,
                           label=str(class_root), progress=progress)
    return _imageset(decoded, labels, classes, where=str(class_root), present=set(present))


def load_tar(
    archive: Path,
    *,
    split: str = "train",
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    cache_folder: Path | None = None,
    progress: bool = False,
) -> ImageSet:
    """Load a class-per-folder tree stored in a tar archive (``[top/]split/class/file``), read in place."""
    where = f"{archive}::{split}"

    def members() -> list[SourceFile]:
        entries = []
        for path, data in _tar_images(archive):
            depth = _split_depth(path.parts, split)  # the split folder, at any depth
            if depth is not None:
                entries.append(SourceFile(PurePosixPath(*path.parts[depth + 1 :]).as_posix(), data=data))
        if not entries:
            raise CnnlabError(f"has no {split}/<class>/ images", where=str(archive),
                              fix=f"the archive must hold [top/]{split}/<class>/<image> members")
        return sorted(entries, key=lambda f: (f.name.split("/", 1)[0], f.name))

    # One stamp for the whole archive: a cache hit neither decompresses nor lists it.
    st = archive.stat()
    stamp = [str(archive.resolve()), st.st_size, st.st_mtime_ns, split]
    decoded = decode_files(members, image_size=image_size, channels=channels, cache_folder=cache_folder,
                           label=f"{archive.resolve()}::{split}", progress=progress, stamp=stamp)
    classes = sorted({name.split("/", 1)[0] for name in decoded.names})
    index = {name: i for i, name in enumerate(classes)}
    labels = [index[name.split("/", 1)[0]] for name in decoded.names]
    return _imageset(decoded, labels, classes, where=where, present=set(classes))


def _tar_images(archive: Path) -> list[tuple[PurePosixPath, bytes]]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            out = []
            for member in tar:
                path = PurePosixPath(member.name)
                if not member.isfile() or any(is_ignored(p) for p in path.parts) or not is_image_name(path.name):
                    continue
                handle = tar.extractfile(member)
                out.append((path, handle.read() if handle else b""))
            return out
    except (tarfile.TarError, OSError, EOFError) as error:
        raise CnnlabError(f"cannot read the archive ({archive_reason(error)})", where=str(archive),
                          fix="check the file is a complete .tar / .tar.gz, or extract it and give the folder") from None


def archive_reason(error: BaseException) -> str:
    """One line for why a tar archive cannot be read (tarfile's own message lists, on lines of
    their own, every compression it tried)."""
    if isinstance(error, tarfile.ReadError):
        return "not a tar / tar.gz archive, or a damaged one"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _imageset(decoded: Decoded, labels: list[int], classes: list[str], where: str, present: set[str]) -> ImageSet:
    if not decoded.ok:
        reasons = ", ".join(sorted({r for _, r in decoded.skipped})) or "no image files"
        raise CnnlabError(f"no valid image found ({len(decoded.names)} candidate files; {reasons})", where=where,
                          fix="put .jpg/.png/... images in one subfolder per class")
    targets = np.asarray([labels[i] for i in decoded.ok], dtype=np.int64)
    counts = np.bincount(targets, minlength=len(classes))
    # A class folder that exists but holds no valid image deserves a warning; a class
    # simply absent from a test/ folder does not.
    empty = [name for name, count in zip(classes, counts) if count == 0 and name in present]
    if decoded.skipped:
        listing = "; ".join(f"{n} ({r})" for n, r in decoded.skipped[:10])
        more = f" and {len(decoded.skipped) - 10} more" if len(decoded.skipped) > 10 else ""
        warnings.warn(f"{where}: skipped {len(decoded.skipped)} file(s): {listing}{more}", DataWarning, stacklevel=3)
    for name in empty:
        warnings.warn(f"{where}: class folder {name!r} has no valid image", DataWarning, stacklevel=3)
    imageset = ImageSet(
        data=decoded.images,
        targets=targets,
        classes=classes,
        task="classification",
        files=[decoded.names[i] for i in decoded.ok],
        skipped=list(decoded.skipped),
        name=where,
        empty_classes=empty,
        original_sizes=dict(decoded.sizes),
        original_modes=dict(decoded.modes),
    )
    return imageset
