"""``open_dataset``: one entry point for built-in names, folders, archives and CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.data import remote as dl
from cnnlab.data.cifar import LAYOUT as CIFAR_LAYOUT
from cnnlab.data.cifar import find_cifar, read_cifar
from cnnlab.data.csvset import load_csv
from cnnlab.data.folders import available_splits as folder_splits
from cnnlab.data.folders import load_folder, load_tar, tar_splits
from cnnlab.data.idx import read_idx
from cnnlab.data.imageset import ImageSet
from cnnlab.data.roots import cache_dir, data_root
from cnnlab.data.shapes import load_shapes
from cnnlab.errors import CnnlabError, shorten
from cnnlab.files import path_kind

BUILTIN = ("shapes", "mnist", "fashion-mnist", "cifar10", "cifar100")

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Extracted class-per-folder copies of CIFAR-10 that count as `cifar10` too.
_CIFAR_TREES = {"cifar10": ("cifar10-jpeg", "cifar10"), "cifar100": ("cifar100-jpeg", "cifar100")}
_SPLITS = ("train", "test", "val")
MAX_IMAGE_SIDE = 4096  # pixels per side a set is decoded to: beyond, a typo, not a CNN input


def open_dataset(
    source: str,
    *,
    split: str = "train",
    root: str | Path | None = None,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    task: str | None = None,
    download: bool = False,
    progress: bool = False,
    classes: list[str] | None = None,
) -> ImageSet:
    """Open a data set by name or path and return the requested split as an :class:`ImageSet`.

    ``source``: a built-in name (``shapes``, ``mnist``, ``fashion-mnist``,
    ``cifar10``, ``cifar100``), a class-per-folder directory (optional
    ``train/``, ``test/``, ``val/`` roots), a ``.tar``/``.tar.gz`` of such a tree,
    or a ``.csv`` of ``path,target``. ``split``: ``train``, ``test`` or ``val``
    (``val`` only where a validation folder exists: see :func:`available_splits`).
    ``image_size`` (H, W) and ``channels`` (1 or 3) resize / convert folder
    images and built-in sets; None keeps the set's own (folders: most common size,
    gray only if every image is gray). ``task`` forces classification or
    regression for CSV sets. ``download`` fetches missing built-in files.
    ``classes``: the class list to label with (a validation or test set opened for
    a model trained on another set): label ``k`` means ``classes[k]`` whatever
    classes this set happens to hold, and a class this set has that ``classes``
    lacks is an error. None: the set's own classes.
    """
    if split not in _SPLITS:
        raise CnnlabError(f"unknown split {split!r}", where="split", fix="use train, test or val")
    if channels not in (None, 1, 3):
        raise CnnlabError(f"channels must be 1 or 3, got {channels!r}", where="channels", fix="use 1 (gray) or 3 (RGB)")
    if image_size is not None:
        if len(image_size) != 2 or min(image_size) < 1 or max(image_size) > MAX_IMAGE_SIDE:
            raise CnnlabError(f"image size must be two whole numbers (H, W) from 1 to {MAX_IMAGE_SIDE}, got "
                              f"{shorten(repr(image_size))}", where="image_size", fix="e.g. 64 64")
        image_size = (int(image_size[0]), int(image_size[1]))
    roots = data_root(root, create=download)  # a mistyped --data is refused before anything is written
    cache = cache_dir(root)
    name = source.lower()
    if name in BUILTIN:
        imageset = _builtin(name, split, roots, cache, download, progress, image_size, channels)
        return with_classes(_adapt(imageset, image_size, channels), classes)
    path = Path(source).expanduser()
    kind = path_kind(path, where=source)
    if kind == "missing":
        raise CnnlabError("no such file or folder, and not a built-in data set", where=source,
                          fix=f"give an image folder, a .csv, or one of {', '.join(BUILTIN)}")
    kwargs = dict(image_size=image_size, channels=channels, cache_folder=cache, progress=progress)
    if kind == "dir":
        return with_classes(load_folder(path, split=split, **kwargs), classes)  # type: ignore[arg-type]
    if path.suffix.lower() == ".csv":
        if split != "train":
            raise CnnlabError(f"a CSV holds one set; there is no {split} split in it", where=source,
                              fix="give the test set as its own CSV, or split with a validation fraction")
        return with_classes(load_csv(path, task=task, **kwargs), classes)  # type: ignore[arg-type]
    if path.name.lower().endswith((".tar", ".tar.gz", ".tgz")):
        return with_classes(load_tar(path, split=split, **kwargs), classes)  # type: ignore[arg-type]
    raise CnnlabError("is neither a folder, a .csv nor a .tar(.gz)", where=source,
                      fix="give a folder with one subfolder per class, or a CSV of path,target")


def available_splits(source: str, root: str | Path | None = None) -> list[str]:
    """Splits ``source`` offers without a validation fraction; ``"val"`` in it means an
    explicit validation folder, which the trainer should prefer to a random split."""
    if source.lower() in BUILTIN:
        return ["test", "train"]
    path = Path(source).expanduser()
    kind = path_kind(path, where=source)
    if kind == "dir":
        return folder_splits(path)
    if kind == "file" and path.name.lower().endswith((".tar", ".tar.gz", ".tgz")):
        return tar_splits(path, cache_dir(root))
    return ["train"]


def with_classes(imageset: ImageSet, classes: list[str] | None) -> ImageSet:
    """``imageset`` labelled with ``classes`` (see :func:`open_dataset`); regression sets unchanged."""
    if classes is None or imageset.classes is None or list(imageset.classes) == list(classes):
        return imageset
    classes = list(classes)
    unknown = [name for name in imageset.classes if name not in classes]
    present = set(np.unique(imageset.targets).tolist())
    unknown = [name for k, name in enumerate(imageset.classes) if name in unknown and k in present]
    if unknown:
        raise CnnlabError(f"has class(es) the training set lacks: {', '.join(map(str, unknown[:10]))}",
                          where=imageset.name or "data",
                          fix=f"use only the training set's classes ({', '.join(map(str, classes[:10]))}"
                              f"{' ...' if len(classes) > 10 else ''}), or train on a set with these classes")
    mapping = np.asarray([classes.index(name) if name in classes else -1 for name in imageset.classes], dtype=np.int64)
    return ImageSet(data=imageset.data, rows=imageset.rows, targets=mapping[imageset.targets], classes=classes,
                    task=imageset.task, files=imageset.files, skipped=list(imageset.skipped), name=imageset.name,
                    empty_classes=[], original_sizes=dict(imageset.original_sizes),
                    original_modes=dict(imageset.original_modes))


def _builtin(name, split, root: Path, cache: Path, download: bool, progress: bool, image_size, channels) -> ImageSet:
    if split == "val":
        raise CnnlabError(f"{name} has no validation split", where="split",
                          fix="split the training set with a validation fraction")
    if name == "shapes":
        size = image_size[0] if image_size and image_size[0] == image_size[1] else 32
        return load_shapes(split, size=size, cache_folder=cache)
    if name in ("mnist", "fashion-mnist"):
        return _idx_set(name, split, root / name, download)
    return _cifar_set(name, split, root, cache, download, progress)


def _idx_set(name: str, split: str, folder: Path, download: bool) -> ImageSet:
    stems = _IDX_FILES[split]
    paths = []
    for stem in stems:
        found = next((folder / f for f in (stem + ".gz", stem) if (folder / f).is_file()), None)
        if found is None and download:
            dl.download(name, folder)
            found = folder / (stem + ".gz")
        if found is None:
            raise dl.missing_files_error(name, folder, [s + ".gz" for s in stems])
        paths.append(found)
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise CnnlabError(f"images {images.shape} and labels {labels.shape} do not match", where=str(folder),
                          fix="use the original IDX files of one data set")
    classes = MNIST_CLASSES if name == "mnist" else FASHION_CLASSES
    return ImageSet(data=np.ascontiguousarray(images.astype(np.uint8)[..., None]), targets=labels.astype(np.int64),
                    classes=list(classes), task="classification", name=f"{name}:{split}")


def _cifar_set(name: str, split: str, root: Path, cache: Path, download: bool, progress: bool) -> ImageSet:
    for folder in (root / name, root):
        found = find_cifar(name, folder)
        if found is not None:
            images, labels, classes = read_cifar(name, found, split)
            return ImageSet(data=images, targets=labels, classes=classes, task="classification", name=f"{name}:{split}")
    # A class-per-folder copy (extracted, or the tar.gz read in place).
    for tree in _CIFAR_TREES[name]:
        if (root / tree / "train").is_dir():
            return load_folder(root / tree, split=split, cache_folder=cache, progress=progress)
        for suffix in (".tar.gz", ".tgz", ".tar"):
            if (root / (tree + suffix)).is_file():
                return load_tar(root / (tree + suffix), split=split, cache_folder=cache, progress=progress)
    if download:
        dl.download(name, root / name)
        return _cifar_set(name, split, root, cache, False, progress)
    archive = CIFAR_LAYOUT[name]["archive"]
    raise dl.missing_files_error(name, root / name, [archive])


def _adapt(imageset: ImageSet, image_size, channels) -> ImageSet:
    """Resize / convert a built-in set held in memory when the model asks for another shape."""
    h, w, c = imageset.image_shape
    want_c = channels or c
    want_hw = tuple(image_size) if image_size else (h, w)
    if (want_hw, want_c) == ((h, w), c):
        return imageset
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(imageset.images)).permute(0, 3, 1, 2).float()
    if want_c != c:
        # gray -> RGB repeats; RGB -> gray uses the ITU-R 601-2 luma weights (as Pillow's "L").
        x = x.repeat(1, 3, 1, 1) if want_c == 3 else (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, True)
    if want_hw != (h, w):
        x = F.interpolate(x, size=want_hw, mode="bilinear", align_corners=False, antialias=True)
    data = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return ImageSet(data=data, targets=imageset.targets, classes=imageset.classes, task=imageset.task,
                    files=imageset.files, name=imageset.name)
