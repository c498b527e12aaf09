"""Write a built-in set as a class-per-folder tree of PNG files (``cnnlab data export``).

``DIR/train/<class>/NNNNN.png`` and ``DIR/test/<class>/NNNNN.png``: the layout
Keras's ``ImageDataGenerator.flow_from_directory`` reads (the textbook chapter's
class-per-folder MNIST copy), and the one cnnlab's folder sets read. ``NNNNN`` is
the image's index in the set's own order, zero-padded so that sorted names keep
that order (Keras's directory split takes the first sorted files of each class).
Each split is written into a hidden folder first and renamed into place when
complete, so an interrupted export leaves no half tree behind.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from cnnlab.errors import CnnlabError

SPLITS = ("train", "test")


def folder_name(class_name: str) -> str:
    """A class name as a folder name: path separators and odd characters become '_'."""
    return re.sub(r"[^A-Za-z0-9._ -]+", "_", class_name).strip() or "_"


def export_dataset(name: str, out: str | Path, *, root: str | Path | None = None, limit: int | None = None,
                   splits: tuple[str, ...] = SPLITS) -> dict[str, dict[str, int]]:
    """Write built-in set ``name`` under ``out``; returns ``{split: {class folder: images}}``.

    ``limit``: at most this many images per split (the first ones), for quick tries.
    """
    from PIL import Image

    from cnnlab.data.sources import open_dataset

    if not str(out).strip():  # Path("") is the current folder: never write there unasked
        raise CnnlabError("is empty", where="DIR", fix="give the folder to write the tree into, e.g. mnist-png")
    if not str(name).strip():
        raise CnnlabError("is empty", where="NAME", fix="give a built-in set, e.g. `cnnlab data export mnist mnist-png`")
    out = Path(out)
    for split in splits:
        if (out / split).exists() and any((out / split).iterdir()):
            raise CnnlabError(f"{out / split} already holds files", where=str(out),
                              fix="give an empty or new folder (cnnlab never overwrites a data set)")
    written: dict[str, dict[str, int]] = {}
    for split in splits:
        imageset = open_dataset(name, split=split, root=root)
        if imageset.task != "classification" or not imageset.classes:
            raise CnnlabError("only classification sets can be written as class folders", where=name,
                              fix="use mnist, fashion-mnist, cifar10 or cifar100")
        folders = [folder_name(c) for c in imageset.classes]
        count = len(imageset) if limit is None else min(limit, len(imageset))
        partial = out / f".partial-{split}"
        shutil.rmtree(partial, ignore_errors=True)
        for folder in folders:
            (partial / folder).mkdir(parents=True, exist_ok=True)
        digits = max(5, len(str(len(imageset) - 1)))
        counts = dict.fromkeys(folders, 0)
        for index in range(count):
            pixels = imageset.images[index]
            image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
            folder = folders[int(imageset.targets[index])]
            image.save(partial / folder / f"{index:0{digits}d}.png")
            counts[folder] += 1
        if (out / split).exists():
            (out / split).rmdir()  # empty (checked above)
        os.replace(partial, out / split)
        written[split] = counts
    return written
