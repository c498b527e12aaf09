"""Transfer learning: pretrained weights, frozen layers stay put, the unfreeze step, input adaptation, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import create
from cnnlab.models.base import ZooModel
from cnnlab.train.api import fit
from cnnlab.train.optim import make_optimizer, make_schedule
from cnnlab.train.transfer import (Unfreeze, adapt_input_channels, apply_freeze, freeze_plan, param_groups,
                                   read_pretrained)

SPEC = {"input_shape": [12, 12, 3], "layers": [
    {"type": "Conv2D", "filters": 4, "kernel_size": 3, "use_bias": False},
    {"type": "BatchNormalization", "momentum": 0.5},
    {"type": "Activation", "activation": "relu"},
    {"type": "Conv2D", "filters": 6, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "GlobalAveragePooling2D"},
    {"type": "Dense", "units": 2, "activation": "softmax"}]}
BACKBONE = ("conv2d", "batch_normalization", "conv2d_1")


def make_folder(root: Path, classes, per_class=12, size=12, grey=False, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(40 + 70 * k, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            image = Image.fromarray(pixels)
            (image.convert("L") if grey else image).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory) -> Path:
    """A spec model (conv, batch norm, conv, GAP, Dense 2) trained 2 epochs on a 2-class folder."""
    root = tmp_path_factory.mktemp("pretrain")
    data = make_folder(root / "data", ("a", "b"))
    spec = root / "spec.json"
    spec.write_text(json.dumps(SPEC))
    fit(str(data), str(spec), out=root / "run", epochs=2, batch_size=8, verbose=0, **{"optimizer.lr": 0.01})
    return root / "run"


def test_frozen_parameters_and_statistics_are_bit_identical_after_training_with_weight_decay(pretrained_run, tmp_path):
    data = make_folder(tmp_path / "new", ("p", "q", "r"), seed=1)
    out = tmp_path / "run"
    fit(str(data), None, out=out, epochs=2, batch_size=8, verbose=0,
        **{"transfer.pretrained": str(pretrained_run), "transfer.freeze": "features", "optimizer.name": "sgd",
           "optimizer.lr": 0.1, "optimizer.momentum": 0.9, "optimizer.weight_decay": 0.5})
    before, after = load_file(pretrained_run / "weights.safetensors"), load_file(out / "weights.safetensors")
    frozen = [k for k in before if k.split(".")[1] in BACKBONE]
    assert any("running_mean" in k for k in frozen) and any("running_var" in k for k in frozen)
    for key in frozen:
        assert torch.equal(before[key], after[key]), key  # weight decay 0.5 would have shrunk them
    assert tuple(after["layers.dense.weight"].shape) == (3, 6)  # the head rebuilt for 3 classes
    meta = json.loads((out / "model.json").read_text())
    assert meta["transfer"]["freeze"] == "features" and meta["classes"] == ["p", "q", "r"]


def test_fine_tuning_without_freeze_moves_the_backbone(pretrained_run, tmp_path):
    data = make_folder(tmp_path / "new", ("p", "q"), seed=1)
    fit(str(data), None, out=tmp_path / "run", epochs=1, batch_size=8, verbose=0,
        **{"transfer.pretrained": str(pretrained_run), "optimizer.lr": 0.05})
    before, after = load_file(pretrained_run / "weights.safetensors"), load_file(tmp_path / "run" / "weights.safetensors")
    assert not torch.equal(before["layers.conv2d.weight"], after["layers.conv2d.weight"])


def _tiny_zoo(bn: nn.Module) -> ZooModel:
    features = nn.Sequential(nn.Conv2d(3, 4, 3), bn, nn.ReLU(), nn.Conv2d(4, 4, 3))
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    return ZooModel(features, head, num_features=4)


@pytest.mark.parametrize("kind", ["torch", "cnnlab"])
def test_frozen_batchnorm_statistics_do_not_move_even_after_model_train(kind):
    from cnnlab.nn.core import BatchNorm

    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4, momentum=0.5) if kind == "torch" else BatchNorm(4, momentum=0.5)
    model = _tiny_zoo(bn)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    apply_freeze(freeze_plan(model, "features"))
    x = torch.randn(8, 3, 10, 10) * 3 + 2
    for _ in range(3):
        model.train()  # what every training loop calls, and what undoes a plain bn.eval()
        assert model.training
        model(x).sum().backward()
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    # In inference mode the output is the moving-statistics normalisation, not the batch's.
    model.train()
    out = bn(torch.full((2, 4, 3, 3), 5.0))
    expected = (5.0 - mean) / torch.sqrt(var + bn.eps) * bn.weight.detach() + bn.bias.detach()
    torch.testing.assert_close(out[0, :, 0, 0], expected)


def test_train_bn_true_lets_frozen_batchnorm_train():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    model = _tiny_zoo(bn)
    frozen = apply_freeze(freeze_plan(model, "features"), train_bn=True)
    mean = bn.running_mean.clone()
    model.train()
    model(torch.randn(8, 3, 10, 10) + 3)
    assert not torch.equal(bn.running_mean, mean)
    assert bn.weight.requires_grad and all(p is not bn.weight for p in frozen)
    assert not model.features[0].weight.requires_grad


def test_optimizer_holds_no_frozen_parameter_and_unfreezing_adds_them_at_the_backbone_rate():
    torch.manual_seed(0)
    model = create("resnet20", num_classes=3, input_shape=(8, 8, 3))
    plan = freeze_plan(model, 2)  # conv1 and bn1
    assert plan.names == ["features.conv1", "features.bn1"]
    frozen = apply_freeze(plan)
    frozen_ids = {id(p) for p in frozen}
    assert frozen_ids == {id(model.features.conv1.weight), id(model.features.bn1.weight), id(model.features.bn1.bias)}
    groups = param_groups(model, backbone_lr_mult=0.1, lr=0.01)
    opt = make_optimizer("sgd", groups, lr=0.01, momentum=0.9, weight_decay=1e-4)
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not held & frozen_ids
    assert len(held) == sum(1 for p in model.parameters()) - 3
    assert [g["name"] for g in opt.param_groups] == ["head", "backbone"]
    assert [g["lr"] for g in opt.param_groups] == [0.01, pytest.approx(0.001)]
    assert {id(p) for p in opt.param_groups[0]["params"]} == {id(p) for p in model.head.parameters()}

    schedule = make_schedule("cosine", opt, epochs=4, steps_per_epoch=5)
    trainer = type("T", (), {"optimizer": opt, "schedule": schedule, "model": model})()
    callback = Unfreeze(plan, 1, backbone_lr_mult=0.1)
    callback.on_epoch_end(trainer, 0, {})
    added = opt.param_groups[-1]
    assert added["name"] == "unfrozen" and {id(p) for p in added["params"]} == frozen_ids
    assert added["lr"] == pytest.approx(0.001) and added["momentum"] == 0.9 and added["weight_decay"] == 1e-4
    assert all(p.requires_grad for p in model.parameters())
    assert model.features.bn1.training  # back to the model's mode
    opt.step()
    schedule.after_step()  # the schedule drives the new group too
    assert opt.param_groups[-1]["lr"] == pytest.approx(opt.param_groups[1]["lr"])


@pytest.mark.parametrize("schedule_name", ["onecycle", "step", "plateau", "exponential"])
def test_every_schedule_drives_an_unfrozen_group(schedule_name):
    model = _tiny_zoo(nn.BatchNorm2d(4))
    plan = freeze_plan(model, "features")
    apply_freeze(plan)
    opt = make_optimizer("adam", param_groups(model, lr=0.01, backbone_lr_mult=0.5), lr=0.01)
    schedule = make_schedule(schedule_name, opt, epochs=3, steps_per_epoch=2, step_size=1, gamma=0.5)
    trainer = type("T", (), {"optimizer": opt, "schedule": schedule, "model": model})()
    Unfreeze(plan, 1, backbone_lr_mult=0.5).unfreeze(trainer)
    for _ in range(2):
        opt.step()
        schedule.after_step()
    schedule.after_epoch({"val_loss": 1.0})
    head, unfrozen = opt.param_groups[0]["lr"], opt.param_groups[-1]["lr"]
    assert unfrozen == pytest.approx(head * 0.5)


def test_freeze_by_layer_names_and_glob_patterns():
    model = create("resnet20", num_classes=2, input_shape=(8, 8, 3))
    plan = freeze_plan(model, ["features.layer1*", "features.conv1"])
    names = plan.names
    assert "features.conv1" in names and all(n.startswith(("features.layer1", "features.conv1")) for n in names)
    assert len(names) == 1 + 3 * 5 and "features.bn1" not in names  # 3 blocks of conv1, bn1, conv2, bn2, relu
    with pytest.raises(CnnlabError, match="no layer is named 'features.layerX'"):
        freeze_plan(model, "features.layerX")
    with pytest.raises(CnnlabError, match="the backbone has 6"):
        freeze_plan(model, 7)


def test_adapted_first_conv_on_grey_equals_the_colour_conv_on_grey_repeated():
    torch.manual_seed(0)
    weight = torch.randn(5, 3, 3, 3)
    grey = torch.rand(2, 1, 9, 9)
    summed = adapt_input_channels(weight, 1)
    assert summed.shape == (5, 1, 3, 3)
    torch.testing.assert_close(F.conv2d(grey, summed), F.conv2d(grey.expand(-1, 3, -1, -1), weight))
    six = adapt_input_channels(weight, 6)
    torch.testing.assert_close(F.conv2d(torch.ones(1, 6, 5, 5), six), F.conv2d(torch.ones(1, 3, 5, 5), weight))
    assert adapt_input_channels(weight, 4).shape == (5, 4, 3, 3)


def test_one_channel_data_on_a_three_channel_pretrained_backbone_trains(pretrained_run, tmp_path):
    data = make_folder(tmp_path / "grey", ("p", "q"), grey=True, seed=2)
    history = fit(str(data), None, out=tmp_path / "run", epochs=2, batch_size=8, verbose=0,
                  **{"transfer.pretrained": str(pretrained_run), "data.channels": 1, "optimizer.lr": 0.01})
    assert history.model.input_shape == (12, 12, 1)
    assert all(np.isfinite(history.history["loss"]))
    source = load_file(pretrained_run / "weights.safetensors")["layers.conv2d.weight"]
    assert history.model.layers["conv2d"].weight.shape == (4, 1, 3, 3)
    # fine-tuning moved it; the first epoch started from the summed kernels
    assert source.sum(1, keepdim=True).shape == history.model.layers["conv2d"].weight.shape


def test_regression_gets_one_linear_output(pretrained_run, tmp_path):
    folder = make_folder(tmp_path / "imgs", ("a",), per_class=16)
    rows = ["filename,value"] + [f"imgs/a/{i}.png,{i / 10}" for i in range(16)]
    (tmp_path / "targets.csv").write_text("\n".join(rows) + "\n")
    history = fit(str(tmp_path / "targets.csv"), None, out=tmp_path / "run", epochs=1, batch_size=8, verbose=0,
                  **{"transfer.pretrained": str(pretrained_run), "transfer.freeze": "features"})
    assert folder.is_dir()
    assert history.model.layers["dense"].weight.shape == (1, 6)
    assert history.model.spec["layers"][-1]["activation"] == "linear"


# ----------------------------------------------------------------------- wrong files


def test_a_bundle_of_another_architecture_is_refused_naming_the_file(pretrained_run, tmp_path):
    data = make_folder(tmp_path / "d", ("p", "q"))
    with pytest.raises(CnnlabError) as error:
        fit(str(data), "resnet20", out=tmp_path / "run", epochs=1, verbose=0,
            **{"transfer.pretrained": str(pretrained_run)})
    assert str(pretrained_run) in str(error.value) and "resnet20" in str(error.value)
    assert not (tmp_path / "run").exists()


def test_a_truncated_pth_is_refused_naming_the_file(tmp_path):
    model = create("resnet20", num_classes=2, input_shape=(8, 8, 3))
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CnnlabError) as error:
        read_pretrained(path)
    assert str(path) in str(error.value)


def test_a_state_dict_with_missing_keys_is_refused_naming_the_key(tmp_path):
    data = make_folder(tmp_path / "d", ("p", "q"), size=8)
    state = create("resnet20", num_classes=10, input_shape=(8, 8, 3)).state_dict()
    del state["features.layer2.1.conv1.weight"]
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    with pytest.raises(CnnlabError) as error:
        fit(str(data), "resnet20", out=tmp_path / "run", epochs=1, verbose=0, **{"transfer.pretrained": str(path)})
    assert "features.layer2.1.conv1.weight" in str(error.value) and str(path) in str(error.value)


def test_a_state_dict_loads_onto_the_zoo_model_with_a_new_head(tmp_path):
    data = make_folder(tmp_path / "d", ("p", "q", "r"), size=8)
    torch.manual_seed(5)
    source = create("resnet20", num_classes=10, input_shape=(32, 32, 3))
    path = tmp_path / "weights.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    history = fit(str(data), "resnet20", out=tmp_path / "run", epochs=1, verbose=0,
                  **{"transfer.pretrained": str(path), "transfer.freeze": "features", "data.channels": 1})
    after = history.model.state_dict()
    torch.testing.assert_close(after["features.layer3.2.conv2.weight"], source.state_dict()["features.layer3.2.conv2.weight"])
    torch.testing.assert_close(after["features.conv1.weight"], source.state_dict()["features.conv1.weight"].sum(1, keepdim=True))
    assert after["head.fc.weight"].shape == (3, 64)


def test_an_unknown_suffix_and_a_missing_file_are_refused(tmp_path):
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(CnnlabError, match="cannot tell"):
        read_pretrained(tmp_path / "w.txt")
    with pytest.raises(CnnlabError, match="no such pretrained"):
        read_pretrained(tmp_path / "absent.pth")


# ------------------------------------------------------------ resume across the unfreeze point

WORKER = Path(__file__).with_name("transfer_worker.py")
RESUME_SPEC = {"input_shape": [24, 24, 3], "layers": [
    {"type": "Conv2D", "filters": 16, "kernel_size": 3, "padding": "same", "use_bias": False},
    {"type": "BatchNormalization"}, {"type": "Activation", "activation": "relu"},
    {"type": "Conv2D", "filters": 16, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "Dropout", "rate": 0.2}, {"type": "GlobalAveragePooling2D"},
    {"type": "Dense", "units": 2, "activation": "softmax"}]}
STEPS = 40  # 2 x 100 images, 20 % held out, batch 4


@pytest.fixture(scope="module")
def resume_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    base = make_folder(root / "base", ("a", "b"), per_class=8, size=24)
    spec = root / "spec.json"
    spec.write_text(json.dumps(RESUME_SPEC))
    fit(str(base), str(spec), out=root / "pretrained", epochs=1, batch_size=8, verbose=0)
    data = make_folder(root / "data", ("p", "q"), per_class=100, size=24, seed=3)
    return root, data, root / "pretrained"


def _run(run_dir, data, pretrained, *extra):
    import subprocess
    import sys

    return subprocess.run([sys.executable, str(WORKER), str(run_dir), str(data), str(pretrained), *extra],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("phase", [1, 2])
def test_sigkill_in_either_phase_resumes_exactly(resume_setup, tmp_path, phase):
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    root, data, pretrained = resume_setup
    reference = root / "reference"
    if not (reference / "weights.safetensors").exists():
        done = _run(reference, data, pretrained)
        assert done.returncode == 0, done.stderr
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, str(WORKER), str(killed), str(data), str(pretrained)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    low, high = (phase - 1) * STEPS + 1, phase * STEPS - 6  # a mid-epoch state of epoch `phase`
    pattern = re.compile(r"ckpt-(\d{9})-0\.")
    deadline, seen = time.monotonic() + 240, None
    while seen is None and time.monotonic() < deadline:
        assert process.poll() is None, "the worker ended before it could be killed"
        folder = killed / "state"
        for name in (os.listdir(folder) if folder.is_dir() else []):
            match = pattern.match(name)
            if match and low <= int(match.group(1)) <= high:
                seen = int(match.group(1))
        time.sleep(0.001)  # polling interval, not a wait for the worker
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert seen is not None and not (killed / "weights.safetensors").exists()
    steps = sorted(int(pattern.match(n).group(1)) for n in os.listdir(killed / "state") if pattern.match(n))
    assert (steps[-1] - 1) // STEPS == phase - 1  # the newest state really is in that phase

    resumed = _run(killed, data, pretrained, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (killed / "history.csv").read_text() == (reference / "history.csv").read_text()
    a, b = load_file(reference / "weights.safetensors"), load_file(killed / "weights.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    first = load_file(pretrained / "weights.safetensors")["layers.conv2d.weight"]
    assert not torch.equal(first, b["layers.conv2d.weight"])  # phase 2 did train the backbone


def test_summary_shows_frozen_layers_and_the_keras_split(capsys, monkeypatch):
    from cnnlab.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["summary", "resnet20", "--freeze", "features", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["trainable_params"] == 650 and data["non_trainable_params"] == 271_098 - 650
    rows = {row["name"]: row for row in data["layers"]}
    assert rows["features.conv1"]["trainable"] is False and rows["head.fc"]["trainable"] is True
    assert main(["summary", "resnet20", "--freeze", "features.layer3*"]) == 0
    text = capsys.readouterr().out
    assert "Trainable" in text and "Non-trainable params: " in text
    line = next(row for row in text.splitlines() if "features.layer3.0.conv1" in row)
    assert line.rstrip().rstrip("│").strip().endswith("N")
    line = next(row for row in text.splitlines() if "features.layer2.0.conv1" in row)
    assert line.rstrip().rstrip("│").strip().endswith("Y")


def test_cli_train_with_pretrained_freeze_and_unfreeze(pretrained_run, tmp_path, capsys):
    from cnnlab.cli import main

    data = make_folder(tmp_path / "d", ("p", "q"), seed=4)
    out = tmp_path / "run"
    assert main(["train", str(data), "--pretrained", str(pretrained_run), "--freeze", "features", "--freeze-epochs", "1",
                 "--backbone-lr-mult", "0.1", "--epochs", "2", "--batch-size", "8", "--out", str(out), "-q"]) == 0
    text = capsys.readouterr().out
    assert "transfer: frozen: conv2d, batch_normalization, activation, conv2d_1" in text
    assert "non-trainable parameters" in text and "unfroze 5 layer(s), 338 parameters, at 0.1 x" in text
    config = json.loads(json.dumps(__import__("yaml").safe_load((out / "config.yaml").read_text())))
    assert config["transfer"] == {"pretrained": str(pretrained_run), "freeze": "features", "freeze_epochs": 1,
                                  "backbone_lr_mult": 0.1, "train_bn": False}


def test_cli_refuses_wrong_pretrained_files_with_exit_2(pretrained_run, tmp_path, capsys):
    from cnnlab.cli import main

    data = make_folder(tmp_path / "d", ("p", "q"), size=8)
    cut = tmp_path / "cut.pth"
    torch.save(create("resnet20", num_classes=2, input_shape=(8, 8, 3)).state_dict(), cut)
    cut.write_bytes(cut.read_bytes()[:3000])
    cases = [(["--model", "resnet20", "--pretrained", str(cut)], str(cut)),
             (["--model", "resnet20", "--pretrained", str(pretrained_run)], str(pretrained_run)),
             (["--pretrained", str(pretrained_run), "--freeze", "conv9*"], "conv9*"),
             (["--pretrained", str(Path(__file__).parents[1] / "spec" / "fixtures" / "keras_models" / "refused_depthwise.keras")],
              "DepthwiseConv2D")]
    for extra, needle in cases:
        assert main(["train", str(data), *extra, "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()
