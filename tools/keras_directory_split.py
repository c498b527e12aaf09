"""Generate the Keras directory-split fixture that tests/data/test_keras_directory_split.py reads
(Keras is never imported by tests).

Usage (from the repository root):

    python3 tools/keras_directory_split.py   # creates .venv-keras if needed (tools/keras_parity.py), then writes the fixture

It writes tests/data/fixtures/keras_directory_split.json: small class-per-folder
trees (every file: its path and what it is), and for each what Keras does with
``validation_split=0.2``:

- ``flow_from_directory``: the course's API,
  ``tensorflow.keras.preprocessing.image.ImageDataGenerator(rescale=1/255,
  shear_range=0.2, zoom_range=0.2, validation_split=0.2).flow_from_directory(tree,
  subset='training' | 'validation', shuffle=False)`` (in Keras 3 the class lives in
  ``keras.src.legacy.preprocessing.image``): per subset ``.filenames``,
  ``.classes``, ``.class_indices`` and the line it prints. cnnlab's ``--val-split``
  on a class folder follows this one.
- ``image_dataset_from_directory``: ``keras.utils.image_dataset_from_directory(tree,
  validation_split=0.2, subset=..., seed=123, labels='inferred')``, recorded for
  contrast (a different rule: the whole file list shuffled with the seed, the last
  ``int(0.2 n)`` validate, not per class); its printed lines and file lists.

The trees:

- ``same``: class sizes 0 (a folder without an image), 1, 4, 5, 7, 13, 26 (where
  ``int(0.2 n)`` rounds down to 0, 0, 1, 1, 2, 5); names that sort differently as
  strings and as numbers (``10.png`` before ``2.png``); class names likewise
  (``10`` before ``2``, ``B`` before ``a``); mixed extensions (``.png .PNG .jpg
  .JPG .jpeg .bmp .tif .ppm``); files that are not images (``notes.txt``,
  ``.DS_Store``); nested subfolders in a class (``sub/``, ``sub-2/``, ``Sub/``,
  ``sub/deeper/``, where the folder order Keras uses, the sorted walk roots,
  differs from a depth-first walk and from sorting whole paths).
- ``junk``: ``same`` plus what cnnlab ignores and Keras takes: a hidden image file,
  a macOS ``._`` file, a hidden subfolder, hidden and ``__MACOSX`` class folders,
  an image extension on text, an empty ``.jpg``.
- ``formats``: one file per extension cnnlab reads, to record which of them Keras lists.
- ``counts``: per-class counts only (zero-byte files; Keras lists, never opens, at
  construction): MNIST's 60,000 training digits, and Kaggle's Digit Recognizer
  ``train.csv`` (42,000 MNIST digits, the lecture notes' copy: its counts give the
  notes' 33604 / 8396).

Keras only lists files when it builds the iterator, so the files written here are
placeholders (a few bytes of their kind, PIL is not in .venv-keras); the test writes
real images of each kind. Deterministic for a given Keras version.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from keras_parity import ensure_keras  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "fixtures" / "keras_directory_split.json"
FRACTION = 0.2


def _same() -> list[list[str]]:
    """``[path, kind]`` of every entry (kind: an image format, 'text', 'broken', 'empty')."""
    files = [["10/only.png", "png"]]
    files += [[f"2/{n}.png", "png"] for n in (1, 2, 10, 20)]
    files += [[f"B/{n}.png", "png"] for n in (2, 10, 3, 30, 9)]
    files += [["a/Z.png", "png"], ["a/a.PNG", "png"], ["a/b.jpg", "jpg"], ["a/c.JPG", "jpg"],
              ["a/d.jpeg", "jpg"], ["a/e.bmp", "bmp"], ["a/f.tif", "tif"], ["a/notes.txt", "text"],
              ["a/.DS_Store", "text"]]
    files += [["empty/readme.txt", "text"]]
    files += [[f"nested/{p}", "ppm" if p.endswith(".ppm") else "jpg" if p.endswith(".jpg") else "png"] for p in (
        "a.png", "m.png", "z.png", "1.ppm", "Sub/e.png", "sub/b.png", "sub/y.png", "sub/10.png",
        "sub-2/c.png", "sub-2/2.png", "sub/deeper/d.png", "sub/deeper/0.png", "sub/deeper/deepest/x.jpg")]
    files += [[f"numbers/{n}.png", "png"] for n in range(26)]
    return files


def _junk() -> list[list[str]]:
    return _same() + [
        ["a/.hidden.png", "png"], ["a/._Z.png", "broken"], ["nested/.cache/q.png", "png"],
        ["B/broken.png", "broken"], ["B/empty.jpg", "empty"],
        [".ipynb_checkpoints/x-checkpoint.png", "png"], ["__MACOSX/a/._Z.png", "broken"],
    ]


def _formats() -> list[list[str]]:
    kinds = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "jfif": "jpg", "bmp": "bmp", "gif": "gif",
             "tif": "tif", "tiff": "tif", "webp": "webp", "ppm": "ppm"}
    return [[f"x/image.{ext}", kind] for ext, kind in kinds.items()] + [["y/one.png", "png"]]


COUNTS = {
    "mnist_train_60000": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "kaggle_digit_recognizer_42000": [4132, 4684, 4177, 4351, 4072, 3795, 4137, 4401, 4063, 4188],
}

PLACEHOLDER = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff", "bmp": b"BM", "gif": b"GIF89a", "tif": b"II*\x00",
               "webp": b"RIFF\x00\x00\x00\x00WEBP", "ppm": b"P6\n1 1\n255\n\x00\x00\x00", "text": b"not an image\n",
               "broken": b"not an image\n", "empty": b""}


def _write(root: Path, files: list[list[str]]) -> None:
    for path, kind in files:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(PLACEHOLDER[kind])


def _quiet(call: Any) -> tuple[Any, list[str]]:
    """Run ``call()``; its result and the lines it printed to stdout."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = call()
    return result, [line for line in buffer.getvalue().splitlines() if line.strip()]


def flow_from_directory(root: Path) -> dict[str, Any]:
    from tensorflow.keras.preprocessing.image import ImageDataGenerator  # the course's import

    generator = ImageDataGenerator(rescale=1 / 255, shear_range=0.2, zoom_range=0.2, validation_split=FRACTION)
    out: dict[str, Any] = {}
    for subset in ("training", "validation"):
        it, printed = _quiet(lambda: generator.flow_from_directory(
            str(root), target_size=(28, 28), color_mode="grayscale", class_mode="categorical",
            batch_size=32, shuffle=False, subset=subset))
        out[subset] = {"printed": printed, "samples": int(it.samples),
                       "filenames": [f.replace(os.sep, "/") for f in it.filenames],
                       "classes": [int(c) for c in it.classes], "class_indices": dict(it.class_indices)}
    return out


def image_dataset_from_directory(root: Path) -> dict[str, Any]:
    import keras

    out: dict[str, Any] = {"seed": 123}
    for subset in ("training", "validation"):
        ds, printed = _quiet(lambda: keras.utils.image_dataset_from_directory(
            str(root), validation_split=FRACTION, subset=subset, seed=123, image_size=(28, 28), batch_size=32))
        out[subset] = {"printed": printed, "class_names": list(ds.class_names),
                       "filenames": sorted(os.path.relpath(p, root).replace(os.sep, "/") for p in ds.file_paths)}
    return out


def _counts_case(root: Path, counts: list[int]) -> dict[str, Any]:
    for k, n in enumerate(counts):
        folder = root / str(k)
        folder.mkdir(parents=True)
        for i in range(n):
            os.close(os.open(folder / f"{i:05d}.png", os.O_CREAT | os.O_WRONLY))
    keras_out = flow_from_directory(root)
    per_class = {subset: [keras_out[subset]["classes"].count(k) for k in range(len(counts))]
                 for subset in ("training", "validation")}
    return {"per_class": counts, "printed": {s: keras_out[s]["printed"] for s in keras_out},
            "per_class_subset": per_class}


def main() -> None:
    ensure_keras()
    import keras
    import tensorflow as tf

    fixture: dict[str, Any] = {
        "keras": keras.__version__, "tensorflow": tf.__version__, "validation_split": FRACTION,
        "generator": "tools/keras_directory_split.py",
        "api": "tensorflow.keras.preprocessing.image.ImageDataGenerator(rescale=1/255, shear_range=0.2, "
               "zoom_range=0.2, validation_split=0.2).flow_from_directory(DIR, subset='training' | 'validation', "
               "shuffle=False); for contrast keras.utils.image_dataset_from_directory(DIR, validation_split=0.2, "
               "subset=..., seed=123)",
        "trees": {}, "counts": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in (("same", _same()), ("junk", _junk()), ("formats", _formats())):
            root = Path(tmp) / name
            _write(root, files)
            case: dict[str, Any] = {"files": files, "flow_from_directory": flow_from_directory(root)}
            if name == "same":
                case["image_dataset_from_directory"] = image_dataset_from_directory(root)
            fixture["trees"][name] = case
        for name, counts in COUNTS.items():
            fixture["counts"][name] = _counts_case(Path(tmp) / name, counts)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    for name, case in fixture["trees"].items():
        print(name, *(case["flow_from_directory"][s]["printed"] for s in ("training", "validation")))
    for name, case in fixture["counts"].items():
        print(name, case["printed"])
    print(f"wrote {OUT.relative_to(REPO)} (Keras {keras.__version__})")


if __name__ == "__main__":
    main()
