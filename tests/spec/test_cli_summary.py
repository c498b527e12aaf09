"""`cnnlab summary SPEC_FILE [--json]` and zoo names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnlab.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "keras_models.json").read_text())


@pytest.mark.parametrize("net", FIXTURE["seed_nets"], ids=lambda n: n["file"])
def test_example_files_print_kerass_rows_and_totals(net, capsys):
    assert main(["summary", str(EXAMPLES / net["file"])]) == 0
    out = capsys.readouterr().out
    keras = net["keras"]
    for row in keras["layers"]:
        assert f"{row['name']} ({row['type']})" in out
        assert "(None, " + ", ".join(map(str, row["output_shape"])) + ")" in out
    assert f"Total params: {keras['total_params']:,}" in out


def test_mnist_example_prints_93962(capsys):
    assert main(["summary", str(EXAMPLES / "mnist_3conv.yaml")]) == 0
    assert "Total params: 93,962 (367.04 KB)" in capsys.readouterr().out


def test_json_output(capsys):
    assert main(["summary", str(EXAMPLES / "cats_vs_dogs.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 813_217 and data["layers"][0] == {"name": "conv2d", "type": "Conv2D", "output_shape": [62, 62, 32], "params": 896, "trainable": True}


def test_bad_spec_prints_table_up_to_the_failure_then_one_line_error(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("input_shape: [28, 28, 1]\nlayers:\n  - {type: Conv2D, filters: 8, kernel_size: 3}\n  - {type: MaxPooling2D}\n  - {type: Conv2D, filters: 8, kernel_size: 15}\n")
    assert main(["summary", str(spec)]) == 2
    captured = capsys.readouterr()
    assert "max_pooling2d (MaxPooling2D)" in captured.out and "conv2d_1" not in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {spec}:5: layers[2] 'conv2d_1' (Conv2D), field 'kernel_size'")
    assert "Traceback" not in captured.err


def test_missing_file_is_a_one_line_error(capsys):
    assert main(["summary", "nope.yaml"]) == 2
    assert capsys.readouterr().err.startswith("error: summary: no spec file 'nope.yaml'")


def test_zoo_name_is_summarised_when_the_zoo_has_it(capsys):
    models = pytest.importorskip("cnnlab.models")
    if not hasattr(models, "names") or not models.names():
        pytest.skip("zoo not available yet")
    assert "lenet5" in models.names()
    assert main(["summary", "lenet5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # LeNet-5 as published (the lecture notes' LeNet-5 table): 60,840 parameters, 60,000 trainable.
    assert data["total_params"] == 60_840
