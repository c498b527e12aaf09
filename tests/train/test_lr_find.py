"""The learning-rate range test: exponential rates, smoothed loss, a suggestion, nothing changed afterwards."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.train.loader import TensorLoader
from cnnlab.train.losses import make_loss
from cnnlab.train.lr_find import exponential_rates, range_test, suggest
from cnnlab.train.optim import make_optimizer
from cnnlab.train.trainer import Trainer



def make_folder(root, classes, per_class=10, size=12):
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.clip(rng.normal(40 + 70 * k, 30, (size, size, 3)), 0, 255).astype(np.uint8)).save(
                root / name / f"{i}.png")
    return root


def test_rates_grow_geometrically_from_start_to_end():
    rates = exponential_rates(1e-6, 1.0, 7)
    assert rates[0] == pytest.approx(1e-6) and rates[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(rates[1:] / rates[:-1], 10.0)
    with pytest.raises(CnnlabError, match="at most 100"):
        exponential_rates(1e-6, 1.0, 101)
    with pytest.raises(CnnlabError, match="not increasing"):
        exponential_rates(1.0, 1e-3, 10)


def test_the_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = list(np.logspace(-6, 0, 61))
    logs = np.log10(lrs)
    losses = list(2.0 - np.tanh((logs + 3.0) * 2) + np.where(logs > -1, (logs + 1) * 5, 0))  # steepest at 1e-3
    assert suggest(lrs, losses) == pytest.approx(1e-3)


def _trainer(momentum=0.9):
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    opt = make_optimizer("sgd", model.parameters(), lr=0.01, momentum=momentum)
    trainer = Trainer(model, make_loss("sparse_categorical_crossentropy"), opt, device="cpu", verbose=0,
                      channels_last=False, mixed_precision=False)
    return trainer, TensorLoader(x, y, 16, shuffle=True, seed=1)


def test_range_test_restores_weights_optimizer_and_rng_and_smooths_the_loss():
    trainer, loader = _trainer()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    torch.manual_seed(123)
    result = range_test(trainer, loader, start_lr=1e-5, end_lr=1.0, steps=30)
    after_rng = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(after_rng, torch.rand(1))  # the test left the RNG where it found it
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.optimizer.state_dict()["state"] == {} and trainer.optimizer.param_groups[0]["lr"] == 0.01
    assert len(result.lrs) <= 30 and result.lrs[0] == pytest.approx(1e-5)
    average = 0.0
    for i, (raw, smooth) in enumerate(zip(result.raw_losses, result.losses)):
        average = 0.98 * average + 0.02 * raw
        assert smooth == pytest.approx(average / (1 - 0.98 ** (i + 1)))
    assert result.lrs[0] <= result.suggestion <= result.lrs[-1]


def test_range_test_stops_when_the_loss_diverges():
    trainer, loader = _trainer(momentum=0.0)
    result = range_test(trainer, loader, start_lr=1e-3, end_lr=1e6, steps=100)
    assert len(result.lrs) < 100


def test_cli_lr_find_writes_a_plot_and_train_lr_find_trains_at_the_suggestion(tmp_path, capsys):
    data = make_folder(tmp_path / "d", ("a", "b"), per_class=10)
    png = tmp_path / "plot.png"
    assert main(["lr-find", str(data), "--model", "resnet20", "--steps", "20", "--png", str(png), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["steps"] <= 20 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "run"
    assert main(["train", str(data), "--model", "resnet20", "--lr", "find", "--epochs", "1", "--out", str(out), "-qq"]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert isinstance(config["optimizer"]["lr"], float) and config["optimizer"]["lr"] > 0
    assert (out / "lr_find.png").is_file()
    assert main(["train", str(data), "--lr", "fast", "--out", str(tmp_path / "x")]) == 2
    assert "--lr" in capsys.readouterr().err
