"""`cnnlab models`: every name with input size, parameter count and reference."""

from __future__ import annotations

import json

from cnnlab.cli import main
from cnnlab.models import info, names


def test_models_lists_every_name_with_counts(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in names():
        assert name in out
    assert "138,357,544" in out and "224x224x3" in out and "Simonyan" in out


def test_models_json_and_one_model(capsys) -> None:
    assert main(["models", "--json", "--family", "resnet_cifar"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == names("resnet_cifar")
    assert rows[0]["params"] == info("resnet20").params and rows[0]["input_shape"] == [32, 32, 3]
    assert main(["models", "googlenet"]) == 0
    out = capsys.readouterr().out
    assert "trainable 6,624,904" in out and "aux_logits=False" in out


def test_models_bad_input_exits_2_with_one_line(capsys) -> None:
    assert main(["models", "vgg61"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'vgg61'" in err and "vgg16" in err
    assert main(["models", "--family", "transformers"]) == 2
    assert "unknown family" in capsys.readouterr().err
