"""cnnlab's summaries and numbers against Keras 3, read from the committed fixtures.

The fixtures come from tools/keras_parity.py run with tensorflow-cpu + keras in
.venv-keras; nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnlab.nn import to_channels_last
from cnnlab.spec import LAYER_TYPES, SpecError, build, set_keras_weights, summary

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = json.loads((FIXTURES / "keras_models.json").read_text())
NUMERIC = json.loads((FIXTURES / "keras_numeric.json").read_text())

FIELDS = ("name", "type", "output_shape", "params", "trainable")
TOTALS = ("total_params", "trainable_params", "non_trainable_params")


def test_fixture_covers_300_models_and_every_keras_layer_type():
    assert len(MODELS["sequential"]) >= 300
    used = {layer["type"] for entry in MODELS["sequential"] + MODELS["graphs"] for layer in entry["spec"]["layers"]}
    keras_types = set(LAYER_TYPES) - {"BedOfNailsUpSampling2D", "InputLayer"}  # bed of nails is not Keras
    assert keras_types <= used | {"Input"}
    assert len(MODELS["refused"]) >= 10 and len(NUMERIC["cases"]) >= 150


@pytest.mark.parametrize("index", range(len(MODELS["sequential"])))
def test_sequential_summary_equals_keras(index):
    entry = MODELS["sequential"][index]
    ours = summary(build(entry["spec"])).to_dict()
    keras = entry["keras"]
    assert [[row[f] for f in FIELDS] for row in ours["layers"]] == [[row[f] for f in FIELDS] for row in keras["layers"]]
    assert [ours[t] for t in TOTALS] == [keras[t] for t in TOTALS]


@pytest.mark.parametrize("index", range(len(MODELS["graphs"])))
def test_graph_summary_equals_keras(index):
    entry = MODELS["graphs"][index]
    ours = summary(build(entry["spec"])).to_dict()
    keras = entry["keras"]
    # Keras lists a functional model's layers in topological order; compare by name.
    by_name = {row["name"]: [row[f] for f in FIELDS] for row in ours["layers"]}
    assert by_name == {row["name"]: [row[f] for f in FIELDS] for row in keras["layers"]}
    assert [ours[t] for t in TOTALS] == [keras[t] for t in TOTALS]


@pytest.mark.parametrize("index", range(len(MODELS["refused"])))
def test_what_keras_refuses_is_refused_before_running(index):
    entry = MODELS["refused"][index]
    with pytest.raises(SpecError) as caught:
        build(entry["spec"])
    last = len(entry["spec"]["layers"]) - 1
    assert f"layers[{last}]" in str(caught.value), entry["keras_error"]
    assert "Fix:" in str(caught.value)


@pytest.mark.parametrize("net", MODELS["seed_nets"], ids=lambda n: n["file"])
def test_seed_nets_print_the_keras_table_exactly(net):
    model = build(net["spec"])
    assert summary(model).render() == net["keras_text"]


def test_seed_003_mnist_net_prints_93962():
    net = next(n for n in MODELS["seed_nets"] if n["file"] == "mnist_3conv.yaml")
    text = str(summary(build(net["spec"])))
    assert " Total params: 93,962 (367.04 KB)" in text
    assert " Trainable params: 93,962 (367.04 KB)" in text
    assert " Non-trainable params: 0 (0.00 B)" in text


def _case_model(case):
    if "spec" in case:  # several layers, each with its Keras weights
        model = build(case["spec"])
        for name, weights in zip(model.layers, case["weights"]):
            if weights:
                set_keras_weights(model, name, [torch.tensor(w["values"]).reshape(w["shape"]).numpy() for w in weights])
        return model.eval()
    n, h, w, c = case["input_shape"]
    layer = {"type": case["type"], "padding": case["padding"], "strides": case["strides"]}
    if case["type"] == "Conv2D":
        layer.update(filters=case["filters"], kernel_size=case["kernel_size"], dilation_rate=case["dilation_rate"])
    else:
        layer["pool_size"] = case["pool_size"]
    model = build({"input_shape": [h, w, c], "layers": [layer]})
    if case["type"] == "Conv2D":
        conv = model.layers["conv2d"]
        kernel = torch.tensor(case["kernel"]).reshape(case["kernel_shape"])  # Keras (kH, kW, in, out)
        with torch.no_grad():
            conv.weight.copy_(kernel.permute(3, 2, 0, 1))
            conv.bias.copy_(torch.tensor(case["bias"]))
    return model


@pytest.mark.parametrize("index", range(len(NUMERIC["cases"])))
def test_numbers_equal_keras(index):
    case = NUMERIC["cases"][index]
    n, h, w, c = case["input_shape"]
    x = torch.tensor(case["input"]).reshape(n, h, w, c).permute(0, 3, 1, 2)
    with torch.no_grad():
        y = to_channels_last(_case_model(case)(x))
    expected = torch.tensor(case["output"]).reshape(case["output_shape"])
    assert tuple(y.shape) == tuple(expected.shape)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)


def test_numeric_cases_cover_paddings_strides_and_sizes():
    cases = NUMERIC["cases"]
    assert {"Conv2DTranspose", "UpSampling2D", "Flatten+Dense", "BatchNormalization"} <= {c["type"] for c in cases}
    for kind in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
        mine = [c for c in cases if c["type"] == kind]
        assert {c["padding"] for c in mine} == {"valid", "same"}
        assert {c["strides"] for c in mine} == {1, 2, 3}
        sizes = {d for c in mine for d in c["input_shape"][1:3]}
        assert sizes & {5, 7} and sizes & {4, 6}  # odd and even
