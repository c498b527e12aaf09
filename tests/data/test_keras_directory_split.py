"""`--val-split` on a class folder takes the files Keras's ``flow_from_directory`` takes.

The reference is real Keras, run once by tools/keras_directory_split.py into
fixtures/keras_directory_split.json (``ImageDataGenerator(validation_split=0.2,
shear_range=0.2, zoom_range=0.2).flow_from_directory(subset='training' |
'validation')``, the Keras version is in the file). Keras is not imported here:
each test rebuilds the fixture's tree in tmp_path with real images of each kind.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import open_dataset, split_train_val
from cnnlab.data.imageset import ImageSet

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "keras_directory_split.json").read_text())
TREES = FIXTURE["trees"]
FORMAT = {"png": "PNG", "jpg": "JPEG", "bmp": "BMP", "tif": "TIFF", "ppm": "PPM", "gif": "GIF", "webp": "WEBP"}


def build(root: Path, files: list[list[str]]) -> Path:
    """The fixture's tree: real 6x6 images for image kinds, text for 'text' / 'broken', nothing for 'empty'."""
    for i, (path, kind) in enumerate(files):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind in FORMAT:
            pixels = np.random.default_rng(i).integers(0, 256, (6, 6, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(target, format=FORMAT[kind])
        else:
            target.write_bytes(b"" if kind == "empty" else b"not an image\n")
    return root


def cnnlab_split(root: Path) -> tuple[ImageSet, ImageSet, ImageSet]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 'empty' class folder and the skipped junk warn
        data = open_dataset(str(root))
    train, val, _ = split_train_val(data, FIXTURE["validation_split"], seed=5)
    return data, train, val


def test_the_fixture_is_kerass_flow_from_directory():
    assert FIXTURE["keras"].startswith("3.") and "flow_from_directory" in FIXTURE["api"]
    keras = TREES["same"]["flow_from_directory"]
    assert keras["training"]["printed"] == ["Found 47 images belonging to 7 classes."]
    assert keras["validation"]["printed"] == ["Found 9 images belonging to 7 classes."]


@pytest.mark.parametrize("tree", ["same", "junk"])
def test_val_split_selects_kerass_files_in_kerass_order(tmp_path: Path, tree: str):
    # 'junk' adds hidden files and folders, __MACOSX, text with an image extension and an
    # empty .jpg: Keras lists them (and would fail reading them), cnnlab ignores or skips
    # them, so on 'junk' cnnlab takes what Keras takes on the clean tree 'same'.
    data, train, val = cnnlab_split(build(tmp_path / tree, TREES[tree]["files"]))
    keras = TREES["same"]["flow_from_directory"]
    assert data.classes == list(keras["training"]["class_indices"])
    assert train.files == keras["training"]["filenames"]
    assert val.files == keras["validation"]["filenames"]
    assert train.targets.tolist() == keras["training"]["classes"]
    assert val.targets.tolist() == keras["validation"]["classes"]


def test_keras_takes_the_junk_cnnlab_ignores():
    same, junk = TREES["same"]["flow_from_directory"], TREES["junk"]["flow_from_directory"]
    listed = {tree: set(split["training"]["filenames"] + split["validation"]["filenames"])
              for tree, split in (("same", same), ("junk", junk))}
    added = {path for path, _ in TREES["junk"]["files"]} - {path for path, _ in TREES["same"]["files"]}
    assert listed["junk"] - listed["same"] == added  # every one of them, hidden or not an image
    # '.' sorts first: Keras validates on the macOS resource fork and moves a/Z.png to training.
    assert set(junk["validation"]["filenames"]) - set(same["validation"]["filenames"]) == {"a/._Z.png"}
    assert {".ipynb_checkpoints", "__MACOSX"} <= set(junk["training"]["class_indices"])
    assert junk["training"]["printed"] == ["Found 54 images belonging to 9 classes."]


def test_cnnlab_reads_formats_keras_does_not_list(tmp_path: Path):
    # flow_from_directory lists png jpg jpeg bmp ppm tif tiff only; cnnlab also reads gif,
    # jfif and webp, so its class 'x' has 10 images (int(0.2 * 10) = 2 validate) to Keras's 7 (1).
    files = TREES["formats"]["files"]
    if not Image.registered_extensions().get(".webp"):
        pytest.skip("this Pillow cannot write WebP")
    _, train, val = cnnlab_split(build(tmp_path / "formats", files))
    keras = TREES["formats"]["flow_from_directory"]
    taken = set(keras["training"]["filenames"]) | set(keras["validation"]["filenames"])
    assert set(train.files + val.files) - taken == {"x/image.gif", "x/image.jfif", "x/image.webp"}
    assert val.files == ["x/image.bmp", "x/image.gif"] and keras["validation"]["filenames"] == ["x/image.bmp"]


def test_data_inspect_prints_kerass_two_lines(tmp_path: Path, capsys):
    root = build(tmp_path / "same", TREES["same"]["files"])
    assert main(["data", "inspect", str(root), "--val-split", str(FIXTURE["validation_split"])]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Found ")]
    keras = TREES["same"]["flow_from_directory"]
    assert printed == keras["training"]["printed"] + keras["validation"]["printed"]


@pytest.mark.parametrize("name", sorted(FIXTURE["counts"]))
def test_the_per_class_counts_of_mnist_and_the_notes_42000_copy(name: str):
    # Counts only (Keras listed zero-byte files): MNIST's 60,000 training digits give
    # 48004 / 11996, the 42,000-digit copy (Kaggle's Digit Recognizer) the notes' 33604 / 8396.
    case = FIXTURE["counts"][name]
    counts = case["per_class"]
    targets = np.repeat(np.arange(len(counts)), counts)
    files = [f"{k}/{i:05d}.png" for k, n in enumerate(counts) for i in range(n)]
    data = ImageSet(data=np.zeros((len(files), 1, 1, 1), np.uint8), targets=targets,
                    classes=[str(k) for k in range(len(counts))], task="classification", files=files)
    train, val, _ = split_train_val(data, FIXTURE["validation_split"], seed=0)
    for subset, part in (("training", train), ("validation", val)):
        assert np.bincount(part.targets, minlength=len(counts)).tolist() == case["per_class_subset"][subset]
        assert case["printed"][subset] == [f"Found {len(part)} images belonging to {len(counts)} classes."]


def test_a_tar_of_the_tree_validates_on_kerass_files(tmp_path: Path):
    import tarfile

    root = build(tmp_path / "tree" / "train", TREES["same"]["files"])
    with tarfile.open(tmp_path / "tree.tar", "w") as tar:
        tar.add(root, arcname="top/train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = open_dataset(str(tmp_path / "tree.tar"))
    train, val, _ = split_train_val(data, FIXTURE["validation_split"], seed=5)
    keras = TREES["same"]["flow_from_directory"]
    # the same files as Keras; a tar keeps its own (sorted-path) order within a class
    assert sorted(val.files) == sorted(keras["validation"]["filenames"])
    assert sorted(train.files) == sorted(keras["training"]["filenames"])
