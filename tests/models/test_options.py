"""Issue 13: every zoo option is checked, with the option's name, before anything is built.

``Dropout(1.5)`` used to reach torch from VGG / AlexNet / GoogLeNet; options of
the wrong kind reached the builders; huge class counts or widths tried to
allocate. Each is one line naming the model and the option.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.models import create
from cnnlab.ops.limits import MAX_SIZE

GIB = 1024**3


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("vgg16", {"dropout": 1.5}, "vgg16: option 'dropout': must be a rate in [0, 1), got 1.5 Fix: pass e.g. dropout=0.5, or leave it out (default 0.5)"),
        ("alexnet", {"dropout": -0.1}, "alexnet: option 'dropout': must be a rate in [0, 1), got -0.1 Fix: pass e.g. dropout=0.5, or leave it out (default 0.5)"),
        ("googlenet", {"dropout": "x"}, "googlenet: option 'dropout': must be a rate in [0, 1), got 'x' Fix: pass e.g. dropout=0.2, or leave it out (default 0.2)"),
        ("googlenet", {"aux_logits": 1}, "googlenet: option 'aux_logits': must be true or false, got 1 Fix: pass e.g. aux_logits=True or False, or leave it out (default False)"),
        ("resnet50", {"conv_bias": "no"}, "resnet50: option 'conv_bias': must be true or false, got 'no' Fix: pass e.g. conv_bias=True or False, or leave it out (default True)"),
        ("cifar_speedrun", {"widths": [1, 2]}, f"cifar_speedrun: option 'widths': must be three whole numbers of filters in 1..{MAX_SIZE}, got [1, 2] Fix: pass e.g. widths=[64, 256, 256], or leave it out (default [64, 256, 256])"),
        ("cifar_speedrun", {"logit_scale": float("nan")}, "cifar_speedrun: option 'logit_scale': must be a positive number, got nan Fix: pass e.g. logit_scale=0.125, or leave it out (default 0.125)"),
        ("lenet5", {"output": "x"}, "lenet5: option 'output': must be 'rbf' or 'dense', got 'x' Fix: pass e.g. output='rbf', or leave it out (default 'rbf')"),
        ("bonet", {"top": "avg"}, "bonet: option 'top': must be 'flatten' or 'gap', got 'avg' Fix: pass e.g. top='flatten', or leave it out (default 'flatten')"),
        ("fashion_mnist_practice", {"hidden": -1}, f"fashion_mnist_practice: option 'hidden': must be a whole number of units in 0..{MAX_SIZE}, got -1 Fix: pass e.g. hidden=0, or leave it out (default 0)"),
        ("vgg16", {"pooling": "min", "include_top": False}, "vgg16: option 'pooling': must be None, 'avg' or 'max', got 'min' Fix: pass e.g. pooling='avg', or leave it out (default None)"),
        ("vgg16", {"num_classes": 10**12}, f"vgg16: num_classes: num_classes 1000000000000 is over the limit of {MAX_SIZE} Fix: pass the number of classes of the data, e.g. num_classes=10"),
        ("resnet20", {"input_shape": (10**8, 32, 3)}, f"resnet20: input_shape: input_shape 100000000x32x3 has a size over the limit of {MAX_SIZE} Fix: resize the images, e.g. to 224x224x3"),
    ],
)
def test_zoo_options_are_checked(name: str, options: dict, expected: str) -> None:
    with pytest.raises(CnnlabError) as caught:
        create(name, **options)
    assert str(caught.value) == expected


def test_output_activation_names_the_valid_ones() -> None:
    with pytest.raises(CnnlabError, match=r"^mnist_3conv: option 'output_activation': must be None or an activation \(linear, relu, .*softmax.*\), got 'nope' Fix: pass e.g. output_activation='softmax'"):
        create("mnist_3conv", output_activation="nope")
    assert create("mnist_3conv", output_activation="softmax").config["output_activation"] == "softmax"


def test_weights_the_machine_cannot_hold_are_counted_on_meta_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cnnlab.ops.limits.available_memory", lambda: GIB)
    # widths 4096 x 3: 3x3 convs of 4096 -> 4096 channels are 151 M weights each; far over 1 GiB at 4 bytes
    with pytest.raises(CnnlabError, match=r"^cifar_speedrun: model size: its [0-9,]+ weights would take [0-9.]+ GiB, more than the 1\.0 GiB of memory available Fix: "):
        create("cifar_speedrun", widths=[4096, 4096, 4096])
    assert create("cifar_speedrun", widths=[8, 8, 8]).config["widths"] == [8, 8, 8]  # small ones build (under the 1 GiB)
    with pytest.raises(CnnlabError, match=r"^resnet20: input_shape: one 20000x20000x3 input would take 4\.5 GiB, more than the 1\.0 GiB"):
        create("resnet20", input_shape=(20000, 20000, 3))


def test_model_options_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(tmp_path / "imgs" / label / f"{i}.png")
    config = {"data": {"source": "imgs"}, "model": "vgg11", "model_options": {"dropout": 1.5}, "epochs": 1, "out": "run"}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["train", "--config", "exp.yaml", "-qq"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: ") and "vgg11: option 'dropout': must be a rate in [0, 1), got 1.5 Fix: pass e.g. dropout=0.5" in err[0]
