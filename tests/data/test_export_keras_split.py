"""`cnnlab data export` (a built-in set as class folders) and Keras's directory split
(`--val-split` on a class folder takes the files ImageDataGenerator.flow_from_directory takes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.cli import main
from cnnlab.data import open_dataset, split_train_val
from cnnlab.data.export import export_dataset, folder_name
from cnnlab.data.idx import write_idx
from cnnlab.errors import CnnlabError


def _mnist_root(root: Path, labels: list[int]) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    folder = root / "mnist"
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.asarray(labels, np.uint8))
    return images


def test_export_writes_class_folders_in_the_sets_order(tmp_path: Path, capsys):
    labels = [3, 1, 3, 0, 1, 3, 9]
    images = _mnist_root(tmp_path / "root", labels)
    out = tmp_path / "tree"
    assert main(["data", "export", "mnist", str(out), "--data", str(tmp_path / "root")]) == 0
    assert "wrote 7 images in 10 classes to" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "train" / "3").iterdir()) == ["00000.png", "00002.png", "00005.png"]
    assert np.array_equal(np.asarray(Image.open(out / "test" / "9" / "00006.png")), images[6])
    assert not any(p.name.startswith(".") for p in out.iterdir())
    again = open_dataset(str(out / "train"))
    assert again.class_counts() == {"0": 1, "1": 2, "2": 0, "3": 3, "4": 0, "5": 0, "6": 0, "7": 0, "8": 0, "9": 1}
    with pytest.raises(CnnlabError, match="already holds files"):
        export_dataset("mnist", out, root=tmp_path / "root")
    assert export_dataset("mnist", tmp_path / "few", root=tmp_path / "root", limit=2)["test"]["3"] == 1
    assert folder_name("T-shirt/top") == "T-shirt_top"


def test_keras_split_takes_the_first_sorted_files_of_each_class(tmp_path: Path, kit):
    # int(0.2 * 7) = 1, int(0.2 * 10) = 2, int(0.2 * 4) = 0: Keras's
    # DirectoryIterator, split (0, 0.2) for validation and (0.2, 1) for training.
    root = kit.make_class_folder(tmp_path / "set", {"a": 7, "b": 10, "c": 4})
    kit.save(root / "a" / "00.png", Image.fromarray(kit.noise(8, 8, seed=99)))  # written last, sorts first
    data = open_dataset(str(root))
    train, val, record = split_train_val(data, 0.2, seed=123)
    assert val.files == ["a/00.png", "b/000.png", "b/001.png"]  # int(0.2 * 8) = 1, int(0.2 * 10) = 2, int(0.8) = 0
    assert len(train) == 22 - 3 and record["val_files"] == val.files
    assert split_train_val(data, 0.2, seed=7)[1].files == val.files  # no shuffling: the seed is unused


def test_inspect_prints_kerass_found_lines(tmp_path: Path, kit, capsys):
    root = kit.make_class_folder(tmp_path / "set", {str(k): 10 + k for k in range(10)})
    assert main(["data", "inspect", str(root), "--val-split", "0.2", "--out", str(tmp_path / "insp")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    # per class int(0.2 * (10 + k)) = 2 for k < 5, 3 for k >= 5: 25 validation of 145
    assert lines[:2] == ["Found 120 images belonging to 10 classes.", "Found 25 images belonging to 10 classes."]


@pytest.mark.parametrize("argv, where", [(["data", "export", "mnist", ""], "DIR"), (["data", "export", "", "out"], "NAME")])
def test_export_refuses_an_empty_name_or_folder(argv, where, tmp_path, monkeypatch, capsys) -> None:
    from cnnlab.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {where}: is empty") and "Fix:" in err[0]
    assert list(tmp_path.iterdir()) == []
