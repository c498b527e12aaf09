from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.cli import main
from cnnlab.data.inspect import class_balance, inspect_dataset


def test_inspect_report_and_grids(odd_folder: Path, tmp_path: Path, kit):
    before = kit.snapshot(odd_folder)
    report = inspect_dataset(str(odd_folder), out=tmp_path / "out", augment={"rotation_range": 20, "horizontal_flip": True})
    assert kit.snapshot(odd_folder) == before
    assert report["counts"] == {"cats": 13, "dogs": 2, "empty_class": 0}
    assert report["imbalanced"] is True and report["imbalance_ratio"] is None
    assert {s["file"]: s["reason"] for s in report["skipped"]} == kit.SKIPPED
    assert report["original_modes"]["RGB"] == 8 and report["original_sizes"][0] == {"height": 8, "width": 8, "count": 13}
    samples = Image.open(report["samples_png"])
    augmented = Image.open(report["augmented_png"])
    assert samples.format == augmented.format == "PNG" and samples.size[0] > 300
    json.dumps(report, allow_nan=False)  # strict JSON


def test_class_balance_flag():
    assert class_balance({"a": 100, "b": 100}) == (1.0, False)
    assert class_balance({"a": 150, "b": 100}) == (1.5, True)
    assert class_balance({"a": 10}) == (None, False)


def test_cli_inspect_json_with_augment(tmp_path: Path, capsys, kit):
    root = kit.make_class_folder(tmp_path / "set", {"a": 3, "b": 1})
    code = main(["data", "inspect", str(root), "--out", str(tmp_path / "o"), "--json",
                 "--augment", "zoom_range=[0.8, 1.2]", "--augment", "vertical_flip=true"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"a": 3, "b": 1} and report["imbalance_ratio"] == 3.0 and report["imbalanced"]
    assert Path(report["augmented_png"]).is_file() and Path(report["samples_png"]).is_file()


def test_cli_inspect_table_for_a_regression_csv(tmp_path: Path, capsys, kit):
    kit.make_class_folder(tmp_path, {"img": 4})
    (tmp_path / "ages.csv").write_text("path,target\n" + "".join(f"img/{i:03d}.png,{10 * i}\n" for i in range(4)))
    assert main(["data", "inspect", str(tmp_path / "ages.csv"), "--out", str(tmp_path.parent / "o2")]) == 0
    out = capsys.readouterr().out
    assert "4 images, regression" in out and "targets: min 0, max 30" in out


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path: Path, capsys):
    cases = [
        (["data", "inspect", "shapes", "--augment", "foo=1", "--out", str(tmp_path / "o")], "foo"),
        (["data", "inspect", "shapes", "--augment", "rotation_range", "--out", str(tmp_path / "o")], "KEY=VALUE"),
        (["data", "inspect", "mnist", "--data", str(tmp_path)], "train-images-idx3-ubyte.gz"),
        (["data", "download", "imagenet", "--data", str(tmp_path)], "imagenet"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    # And once as a real process: no traceback, exit status 2.
    done = subprocess.run([sys.executable, "-m", "cnnlab.cli", "data", "inspect", str(tmp_path / "missing")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_inspect_refuses_to_write_into_the_data_folder(tmp_path: Path, kit):
    root = kit.make_class_folder(tmp_path / "set", {"a": 1})
    assert main(["data", "inspect", str(root), "--out", str(root / "report")]) == 2
    assert not (root / "report").exists()
    assert np.array_equal(sorted(p.name for p in root.rglob("*")), ["000.png", "a"])
