"""`cnnlab train / evaluate / predict` end to end on tiny folders, and every bad input: exit 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import cnnlab
from cnnlab.cli import main


def make_folder(root: Path, classes=("bright", "dark"), per_class=12, size=12) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            level = 200 if k == 0 else 40
            pixels = np.clip(rng.normal(level, 20, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def tiny_spec(path: Path, units: int) -> Path:
    path.write_text(json.dumps({"input_shape": [12, 12, 3], "layers": [
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": units, "activation": "softmax"}]}))
    return path


@pytest.mark.slow
def test_train_evaluate_predict_on_a_folder(tmp_path, capsys, refused):
    data = make_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    assert main(["train", str(data), "--model", str(tiny_spec(tmp_path / "m.json", 2)), "--epochs", "3",
                 "--batch-size", "8", "--lr", "0.05", "--val-split", "0.25", "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "epoch 3/3" in text and "run folder" in text
    for name in ("model.json", "weights.safetensors", "history.csv", "config.yaml", "split.json", "best/model.json"):
        assert (out / name).is_file(), name
    assert len((out / "history.csv").read_text().splitlines()) == 4
    assert main(["evaluate", str(out), str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 24 and result["classes"] == ["bright", "dark"]
    matrix = np.asarray(result["confusion_matrix"])
    assert matrix.sum() == 24 and matrix.sum(1).tolist() == [12, 12]  # rows: the true classes
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / 24)
    assert result["accuracy"] >= 0.9  # bright (~200) vs dark (~40) images: nearly all right after 3 epochs
    assert result["top1_error"] == pytest.approx(1 - result["accuracy"])
    assert Path(result["confusion_png"]).read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", str(out), str(data), "--json", "--tta", "flip"]) == 0
    assert json.loads(capsys.readouterr().out)["tta"] == "flip"
    _assert_refused(refused, ["evaluate", str(out), str(data), "--tta", "rotate"], "tta", "flip_translate")
    assert main(["predict", str(out), str(data / "dark"), "--json", "--top-k", "2"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 12 and all(len(r["top"]) == 2 for r in records)
    assert all(abs(sum(t["probability"] for t in r["top"]) - 1) < 1e-5 for r in records)
    # The Python API agrees with the command.
    model = cnnlab.load(out)
    assert model.predict_classes(str(data / "dark" / "0.png")) == [records[0]["class"]]
    # Resume of a finished run with more epochs continues it.
    assert main(["train", "--resume", str(out), "--epochs", "4", "-qq"]) == 0
    assert len((out / "history.csv").read_text().splitlines()) == 5


def _assert_refused(refused, argv: list[str], *needles: str) -> None:
    line = refused(*argv)
    for needle in needles:
        assert needle in line, line


def test_bad_inputs_exit_2_and_write_nothing(tmp_path, refused):
    data = make_folder(tmp_path / "imgs", classes=[f"c{i}" for i in range(10)], per_class=2)
    out = tmp_path / "run"
    bad = tmp_path / "exp.yaml"
    bad.write_text(f"data:\n  source: {data}\nepochs: 2\noptimiser:\n  name: sgd\n")
    _assert_refused(refused, ["train", "--config", str(bad), "--out", str(out)], f"{bad}:4", "optimiser", "'optimizer'")
    bad.write_text(f"data: {data}\nepochs: many\n")
    _assert_refused(refused, ["train", "--config", str(bad), "--out", str(out)], f"{bad}:2", "epochs", "integer")
    _assert_refused(refused, ["train", str(data), "--lr", "-1", "--out", str(out)], "--lr", "optimizer.lr", "> 0")
    spec = str(tiny_spec(tmp_path / "m.json", 2))
    _assert_refused(refused, ["train", str(data), "--model", spec, "--out", str(out)],
                    "outputs 2 value(s)", "10 classes", "Dense(10)")
    (tmp_path / "empty").mkdir()
    _assert_refused(refused, ["train", str(tmp_path / "empty"), "--out", str(out)], "empty")
    _assert_refused(refused, ["train", "--resume", str(tmp_path / "nowhere")], "nowhere", "--out")
    assert not out.exists()


def test_a_refused_command_prints_no_traceback_in_a_real_process(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cnnlab.cli", "train", "--resume", str(tmp_path / "gone")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "gone" in done.stderr


def test_data_option_is_where_train_and_evaluate_look_for_built_in_sets(tmp_path, capsys):
    root = tmp_path / "elsewhere"
    root.mkdir()
    assert main(["train", "mnist", "--data", str(root), "-q", "--out", str(tmp_path / "run")]) == 2
    message = capsys.readouterr().err
    assert f"{root / 'mnist'}" in message and "train-images-idx3-ubyte.gz" in message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("fp32", torch.float32),
                                                  ("auto", None)])
def test_precision_sets_the_convolutions_dtype_on_the_cpu_and_is_saved(precision, dtype, tmp_path, monkeypatch):
    from cnnlab.train.trainer import Trainer, cpu_has_native_bf16

    if dtype is None:  # 'auto': bf16 where the CPU multiplies bf16 in hardware, else fp32
        dtype = torch.bfloat16 if cpu_has_native_bf16() else torch.float32

    seen: set[torch.dtype] = set()
    original = Trainer._train_step

    def spy(self, x, y, *share):
        hooks = [m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
                 for m in self.model.modules() if isinstance(m, torch.nn.Conv2d)]
        try:
            return original(self, x, y, *share)
        finally:
            for hook in hooks:
                hook.remove()

    monkeypatch.setattr(Trainer, "_train_step", spy)
    data = make_folder(tmp_path / "imgs")
    assert main(["train", str(data), "--model", str(tiny_spec(tmp_path / "m.json", 2)), "--epochs", "1",
                 "--batch-size", "8", "--out", str(tmp_path / "run"), "--precision", precision, "-qq"]) == 0
    assert seen == {dtype}
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["precision"] == precision
    saved = json.loads((tmp_path / "run" / "model.json").read_text())["training_precision"]
    assert saved == {torch.bfloat16: "bf16", torch.float32: "fp32"}[dtype]


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    from cnnlab.train.trainer import cpu_has_native_bf16

    zen5 = tmp_path / "zen5"
    zen5.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    sapphire = tmp_path / "spr"
    sapphire.write_text("flags\t\t: avx512f amx_bf16 amx_tile\n")
    skylake = tmp_path / "skl"
    skylake.write_text("flags\t\t: avx2 avx512f avx512bw avx512_vnni\n")
    assert cpu_has_native_bf16(zen5) and cpu_has_native_bf16(sapphire)
    assert not cpu_has_native_bf16(skylake)
    assert not cpu_has_native_bf16(tmp_path / "missing")


@pytest.mark.slow  # three tiny trainings: a few seconds
def test_the_auto_model_and_its_augmentation_are_picked_and_a_resume_keeps_the_net_it_began_with(
        tmp_path, capsys, monkeypatch):
    from cnnlab.train import api

    data, out = make_folder(tmp_path / "imgs", size=16), tmp_path / "run"
    assert main(["train", str(data), "--epochs", "1", "--batch-size", "8", "--schedule", "constant",
                 "--val-split", "0", "--out", str(out), "-q"]) == 0
    assert ("picked: augmentation zoom_range 0.2, cutout 4 px (so that the net learns whole objects: its class "
            "activation maps point at them)\n") in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["augment"] == {
        "zoom_range": 0.2, "fill_mode": "reflect", "cutout": 4}  # a quarter of the 16-pixel side
    began = json.loads((out / "auto_model.json").read_text())
    assert began == json.loads((out / "model.json").read_text())["architecture"]["spec"]
    # 16 -> 8 by one pooled block of 32, then 64 3x3 and 128 5x5 at 8x8, GAP, Dense.
    convs = [(layer["filters"], layer["kernel_size"]) for layer in began["layers"] if layer["type"] == "Conv2D"]
    assert convs == [(32, [3, 3]), (64, [3, 3]), (128, [5, 5])]
    assert [layer["type"] for layer in began["layers"]].count("MaxPooling2D") == 1
    # A later cnnlab picks another auto model: the run goes on with the net it began with,
    # also when it was started before auto_model.json existed (the best epoch's bundle says).
    other = api.auto_spec((16, 16, 3), 2, "softmax")
    other["layers"] = other["layers"][:3] + other["layers"][-2:]
    monkeypatch.setattr(api, "auto_spec", lambda *args: other)
    assert main(["train", "--resume", str(out), "--epochs", "2", "-qq"]) == 0
    (out / "auto_model.json").unlink()
    assert main(["train", "--resume", str(out), "--epochs", "3", "-qq"]) == 0
    assert json.loads((out / "model.json").read_text())["architecture"]["spec"] == began
    assert len((out / "history.csv").read_text().splitlines()) == 4
    # Augmentation given: it is the user's, no cutout added.
    assert main(["train", str(data), "--epochs", "1", "--batch-size", "8", "--val-split", "0", "--augment",
                 "horizontal_flip=true", "--out", str(tmp_path / "given"), "-qq"]) == 0
    assert yaml.safe_load((tmp_path / "given" / "config.yaml").read_text())["augment"] == {"horizontal_flip": True}


def test_data_limit_keeps_every_class_of_a_folder_stored_class_by_class(tmp_path):
    from cnnlab.train import config as cfg
    from cnnlab.train.api import load_data, spread

    data = make_folder(tmp_path / "imgs", classes=("a", "b", "c"), per_class=4)
    exp = cfg.Experiment(data={"source": str(data), "val_split": 0, "limit": 6})
    train, val, _ = load_data(exp, split_record=None)
    assert val is None and np.bincount(train.targets).tolist() == [2, 2, 2]  # the first 6 would be 4 a's, 2 b's
    assert spread(12, 6).tolist() == [0, 2, 4, 6, 8, 10] and spread(5, 9).tolist() == [0, 1, 2, 3, 4]
    assert spread(10, 3).tolist() == [0, 3, 6]
