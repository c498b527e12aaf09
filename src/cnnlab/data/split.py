"""Train / validation split: stratified, seeded, and saved so it can be re-applied.

The record is plain JSON: ``{"version", "fraction", "seed", "n", "task",
"val_files" | "val_indices"}``. A run saves it; a resumed run and a later
evaluation call :func:`apply_split` with it and get exactly the same split,
even if files were added to the folder since (by file name), or fail loudly if
a validation file disappeared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.data.folders import keras_order
from cnnlab.data.imageset import ImageSet
from cnnlab.errors import CnnlabError, check_seed, shorten

SPLIT_VERSION = 1


def split_train_val(imageset: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet, dict[str, Any]]:
    """Split into ``(train, val, record)``; ``fraction`` of each class goes to validation.

    Class folders (a classification set with file names) are split as Keras's
    ``ImageDataGenerator(validation_split=f).flow_from_directory`` splits them: per
    class, in Keras's file order (by folder, then name), the first ``int(f * count)`` files are validation
    and the rest training (no shuffling, ``seed`` unused): see :func:`keras_directory_split`;
    a folder so small that this takes no file at all is drawn as other sets are.
    Other sets, per class: ``round(fraction * count)`` images drawn with ``seed``, at
    least one when the class has two or more, never all of them. Regression sets are
    split at random as a whole. Both parts keep the original order.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise CnnlabError(f"validation fraction must be between 0 and 1 (exclusive), got {fraction}",
                          where="validation_split", fix="use e.g. 0.2 for an 80/20 split")
    seed = check_seed(seed)
    if imageset.files is not None and imageset.task == "classification":
        counts = np.bincount(imageset.targets, minlength=len(imageset.classes or []))
        if sum(int(fraction * int(n)) for n in counts) > 0:  # else Keras validates nothing: draw as below
            return keras_directory_split(imageset, fraction, seed)
    rng = np.random.default_rng(check_seed(seed))
    n = len(imageset)
    if imageset.task == "classification":
        groups = [np.flatnonzero(imageset.targets == k) for k in range(len(imageset.classes or []))]
    else:
        groups = [np.arange(n)]
    val: list[np.ndarray] = []
    for members in groups:
        if len(members) < 2:
            continue
        take = min(max(int(round(fraction * len(members))), 1), len(members) - 1)
        val.append(rng.permutation(members)[:take])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    if len(val_idx) == 0:
        raise CnnlabError(f"a validation fraction of {fraction} leaves no validation image ({n} images)",
                          where="validation_split", fix="use a larger fraction or more images")
    record: dict[str, Any] = {"version": SPLIT_VERSION, "fraction": fraction, "seed": seed, "n": n,
                              "task": imageset.task}
    if imageset.files is not None:
        record["val_files"] = [imageset.files[i] for i in val_idx]
    else:
        record["val_indices"] = [int(i) for i in val_idx]
    return _apply(imageset, val_idx) + (record,)


def keras_directory_split(imageset: ImageSet, fraction: float, seed: int = 0) -> tuple[ImageSet, ImageSet, dict[str, Any]]:
    """Keras's directory split: per class, in Keras's file order, files ``[0, int(f n))`` validate.

    As ``keras.preprocessing.image.DirectoryIterator``: subset 'validation' takes
    split ``(0, f)`` and 'training' ``(f, 1)`` of each class's file list, sorted by
    folder then name (:func:`~cnnlab.data.folders.keras_order`: a class folder's own
    files before its subfolders'), ``start, stop = int(split[0] * n), int(split[1] * n)``.
    Checked against Keras itself: tests/data/fixtures/keras_directory_split.json. A class of 42,000 / 10
    images per class at f = 0.2 gives 840 validation and 3,360 training images each.
    """
    if imageset.files is None or imageset.task != "classification":
        raise CnnlabError("Keras's directory split needs a class-per-folder set", where="validation_split",
                          fix="give a folder with one subfolder per class")
    files = imageset.files
    order = sorted(range(len(imageset)), key=lambda i: keras_order(files[i]))
    by_class: list[list[int]] = [[] for _ in imageset.classes or []]
    for i in order:
        by_class[imageset.targets[i]].append(i)
    val: list[int] = []
    for members in by_class:
        val.extend(members[: int(fraction * len(members))])
    if not val:
        raise CnnlabError(f"a validation fraction of {fraction} leaves no validation image ({len(imageset)} images)",
                          where="validation_split", fix="use a larger fraction or more images")
    val_idx = np.sort(np.asarray(val, dtype=np.int64))
    record: dict[str, Any] = {"version": SPLIT_VERSION, "fraction": fraction, "seed": seed, "n": len(imageset),
                              "task": imageset.task, "val_files": [imageset.files[i] for i in val_idx]}
    return _apply(imageset, val_idx) + (record,)


def apply_split(imageset: ImageSet, record: dict[str, Any]) -> tuple[ImageSet, ImageSet]:
    """Re-apply a saved split record; returns ``(train, val)``."""
    if not isinstance(record, dict) or record.get("version") != SPLIT_VERSION:
        raise CnnlabError("is not a split record cnnlab wrote", where="split record",
                          fix="delete it to make a new split (the validation set will change)")
    if "val_files" in record:
        if not isinstance(record["val_files"], list) or not all(isinstance(f, str) for f in record["val_files"]):
            raise CnnlabError("'val_files' is not a list of file names", where="split record",
                              fix="delete it to make a new split (the validation set will change)")
        if imageset.files is None:
            raise CnnlabError("the record names files but this data set has none", where="split record",
                              fix="use the same data set the run was trained on")
        position = {name: i for i, name in enumerate(imageset.files)}
        missing = [f for f in record["val_files"] if f not in position]
        if missing:
            raise CnnlabError(f"{len(missing)} validation file(s) of the saved split are gone, e.g. {missing[0]!r}",
                              where="split record",
                              fix="restore the files, or start a new run to make a new split")
        val_idx = np.sort(np.asarray([position[f] for f in record["val_files"]], dtype=np.int64))
    else:
        if record.get("n") != len(imageset):
            raise CnnlabError(f"the saved split is for {record.get('n')} images, this set has {len(imageset)}",
                              where="split record", fix="use the same data set the run was trained on")
        indices = record.get("val_indices", [])
        if not isinstance(indices, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                    and 0 <= i < len(imageset) for i in indices):
            raise CnnlabError(f"'val_indices' must be positions 0 .. {len(imageset) - 1} of the data set",
                              where="split record", fix="delete it to make a new split (the validation set will change)")
        val_idx = np.asarray(indices, dtype=np.int64)
    return _apply(imageset, val_idx)


def _apply(imageset: ImageSet, val_idx: np.ndarray) -> tuple[ImageSet, ImageSet]:
    is_val = np.zeros(len(imageset), dtype=bool)
    is_val[val_idx] = True
    if not (~is_val).any():
        raise CnnlabError(f"the split leaves no training image ({len(imageset)} images, all for validation)",
                          where="validation split", fix="use a smaller validation fraction, or more images")
    if imageset.task == "classification" and imageset.classes:
        k = len(imageset.classes)
        in_train = np.bincount(imageset.targets[~is_val], minlength=k)
        in_val = np.bincount(imageset.targets[is_val], minlength=k)
        lost = [imageset.classes[c] for c in range(k) if in_train[c] == 0 and in_val[c] > 0]
        if lost:
            raise CnnlabError(f"the split leaves class(es) {shorten(', '.join(map(str, lost)))} with no training image "
                              "(all their images are in the validation part)", where="validation split",
                              fix="add images of these classes, or make a new split (delete split.json, or start a new run)")
    return imageset.subset(np.flatnonzero(~is_val)), imageset.subset(np.flatnonzero(is_val))
