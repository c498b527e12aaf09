"""A zoo model's default training recipe: it fills what the user left unset, and nothing else."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from cnnlab.cli import main
from cnnlab.models import create, info, names, registry
from cnnlab.models.lenet import LENET5_RECIPE
from cnnlab.train import config as cfg
from cnnlab.train.recipe import apply_recipe

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "001-filtros-pooling-lenet" / "lenet5_mnist.yaml"
LENET5_LINE = ("lenet5's recipe (the zoo's default for it): SGD lr 0.05 Nesterov momentum 0.9, one-cycle schedule, "
               "10 epochs of batch 32, inputs standardised (mean 0, variance 1, as the paper scales them), RBF logits "
               "times 0.05 (logit_scale: a softmax temperature; the paper's layers and 60,000 parameters unchanged)")


def experiment(path: Path | None = None, **overrides) -> cfg.Experiment:
    return cfg.load_experiment(path, {"data.source": "mnist", **overrides})


def test_the_bare_command_gets_the_whole_recipe() -> None:
    exp, applied = apply_recipe(experiment(model="lenet5"))
    assert exp.model_options == {"output": "rbf", "logit_scale": 0.05}
    assert exp.data.standardize is True
    assert exp.optimizer.model_dump() == {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True,
                                          "weight_decay": 0.0}
    assert exp.schedule.name == "onecycle" and (exp.epochs, exp.batch_size) == (10, 32)
    assert exp.data.val_split == 0.2 and exp.loss.name is None  # what the recipe does not name stays generic
    assert applied.line() == LENET5_LINE
    # A flag equal to the recipe's value leaves the whole recipe in effect.
    assert apply_recipe(experiment(model="lenet5", epochs=10))[1].line() == LENET5_LINE


def test_flags_and_experiment_file_values_win(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"model": "lenet5", "data": {"source": "mnist", "standardize": False},
                                    "batch_size": 64, "schedule": {"name": "cosine", "eta_min": 0.001}}))
    exp, applied = apply_recipe(cfg.load_experiment(path, {"optimizer.lr": 0.01, "epochs": 3}))
    assert exp.data.standardize is False and exp.batch_size == 64 and exp.epochs == 3
    assert exp.schedule.model_dump(include={"name", "eta_min"}) == {"name": "cosine", "eta_min": 0.001}
    assert exp.optimizer.model_dump() == {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True,
                                          "weight_decay": 0.0}
    assert exp.model_options == {"output": "rbf", "logit_scale": 0.05}
    assert applied.line() == (
        "lenet5's recipe (the zoo's default for it) where you left settings unset: model_options.output rbf, "
        "model_options.logit_scale 0.05, optimizer.name sgd, optimizer.momentum 0.9, optimizer.nesterov true; "
        "left out: schedule (you picked cosine)")


def test_another_optimizer_takes_none_of_the_recipes_optimizer_settings() -> None:
    exp, applied = apply_recipe(experiment(model="lenet5", **{"optimizer.name": "adam"}))
    assert exp.optimizer == cfg.OptimizerConfig(name="adam")  # Adam's own defaults: lr 1e-3, no momentum
    assert exp.schedule.name == "onecycle" and exp.data.standardize is True
    assert applied.left_out == {"optimizer": "you picked adam"}
    # The same optimizer named: the recipe's other optimizer settings still come with it.
    assert apply_recipe(experiment(model="lenet5", **{"optimizer.name": "sgd"}))[0].optimizer.lr == 0.05


def test_a_fully_set_experiment_is_left_exactly_as_it_is() -> None:
    """The course example sets every setting (and another output layer): not one value changes."""
    before = cfg.load_experiment(EXAMPLE)
    after, applied = apply_recipe(before)
    assert after is before and after.model_options == {"output": "dense"}  # no logit_scale for a dense output
    assert applied.filled == {} and applied.line() is None
    assert applied.left_out == {"model_options": "you set output: dense"}


@pytest.mark.parametrize("overrides", [{"model": "mnist_3conv"}, {}, {"model": "no_such_model"},
                                       {"model": "net.yaml"}, {"model": "lenet5", "transfer.pretrained": "run"}])
def test_no_recipe_no_change(overrides) -> None:
    exp = experiment(**overrides)
    assert apply_recipe(exp) == (exp, None)


def test_every_registered_recipe_is_a_valid_experiment_for_its_model() -> None:
    with_recipe = [name for name in names() if info(name).recipe is not None]
    assert "lenet5" in with_recipe and info("lenet5").recipe is LENET5_RECIPE
    for name in with_recipe:
        settings = dict(info(name).recipe.settings)
        exp = cfg.validate({**settings, "model": name, "data": {"source": "x", **settings.get("data", {})}})
        assert exp.model_options == settings.get("model_options", {})
        registry.count(name, **exp.model_options)  # options the model accepts
    # The recipe's output changes no parameter of the paper's LeNet-5.
    assert registry.count("lenet5", **LENET5_RECIPE.settings["model_options"]) == registry.count("lenet5")


def _digits(root: Path, per_class: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for k in range(2):
        (root / str(k)).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.zeros((28, 28), np.uint8)
            pixels[4:24, 6 + 12 * k: 10 + 12 * k] = 200 + rng.integers(0, 50)
            Image.fromarray(pixels, mode="L").save(root / str(k) / f"{i}.png")
    return root


@pytest.mark.slow  # a real (tiny) training, its report and a resume: a few seconds
def test_training_prints_the_recipe_and_resume_keeps_the_runs_own_settings(tmp_path, capsys, monkeypatch) -> None:
    data, run = _digits(tmp_path / "digits"), tmp_path / "run"
    assert main(["train", str(data), "--model", "lenet5", "--epochs", "1", "--val-split", "0", "--out", str(run),
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert ("picked: lenet5's recipe (the zoo's default for it) where you left settings unset: model_options.output "
            "rbf, model_options.logit_scale 0.05, data.standardize true, optimizer.name sgd, optimizer.lr 0.05, "
            "optimizer.momentum 0.9, optimizer.nesterov true, schedule.name onecycle, batch_size 32\n") in out
    saved = (run / cfg.CONFIG_FILE).read_text()
    config = yaml.safe_load(saved)
    assert config["optimizer"]["lr"] == 0.05 and config["model_options"]["logit_scale"] == 0.05
    assert config["data"]["standardize"] is True
    # The zoo's recipe changes later: the run resumes with the settings it was started with.
    changed = dataclasses.replace(LENET5_RECIPE, settings={"optimizer": {"name": "adam", "lr": 0.5}, "batch_size": 2})
    monkeypatch.setitem(registry._REGISTRY, "lenet5", dataclasses.replace(info("lenet5"), recipe=changed))
    assert main(["train", "--resume", str(run), "-q"]) == 0
    assert "recipe" not in capsys.readouterr().out
    assert (run / cfg.CONFIG_FILE).read_text() == saved
    assert create("lenet5").config == {"name": "lenet5", "num_classes": 10, "input_shape": [32, 32, 1],
                                       "include_top": True}  # the zoo model itself: the paper's, unscaled


def test_cnnlab_models_shows_the_recipe(capsys) -> None:
    import json

    assert main(["models", "lenet5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recipe"] == LENET5_RECIPE.settings
    assert main(["models", "resnet20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recipe"] is None
    assert main(["models", "resnet20"]) == 0
    assert "training recipe: none (the generic defaults)" in capsys.readouterr().out
