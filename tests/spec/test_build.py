"""Building specs: forms, graphs, round trips, training behaviour, initialisers, regularisers."""

from __future__ import annotations

import json
import math

import pytest
import torch

from cnnlab.nn.params import count_params
from cnnlab.spec import LAYER_TYPES, SpecModel, build, load_spec, regularization_loss, summary

MNIST = {
    "input_shape": [28, 28, 1],
    "layers": [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPooling2D"},
        {"type": "Flatten"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ],
}


def test_dict_list_yaml_and_json_build_the_same_model(tmp_path):
    as_list = [{"type": "Input", "shape": [28, 28, 1]}, *MNIST["layers"]]
    first_layer_shape = [{**MNIST["layers"][0], "input_shape": [28, 28, 1]}, *MNIST["layers"][1:]]
    yaml_file = tmp_path / "m.yaml"
    yaml_file.write_text("input_shape: [28, 28, 1]\nlayers:\n" + "".join(f"  - {json.dumps(layer)}\n" for layer in MNIST["layers"]))
    json_file = tmp_path / "m.json"
    json_file.write_text(json.dumps(MNIST))
    specs = [build(s).spec for s in (MNIST, as_list, first_layer_shape, yaml_file, str(json_file))]
    assert all(s == specs[0] for s in specs)
    assert load_spec(yaml_file) == MNIST


def test_spec_model_contract_nchw_in_spec_and_input_shape():
    model = build(MNIST, seed=0)
    assert isinstance(model, SpecModel) and model.input_shape == (28, 28, 1)
    assert model(torch.rand(4, 1, 28, 28)).shape == (4, 10)
    json.dumps(model.spec)  # JSON-safe
    # weights in PyTorch layout
    assert model.layers["conv2d"].weight.shape == (8, 1, 3, 3)
    assert model.layers["dense"].weight.shape == (10, 13 * 13 * 8)


def test_normalised_spec_rebuilds_the_same_model():
    model = build(MNIST, seed=1)
    again = build(json.loads(json.dumps(model.spec)), seed=1)
    assert again.spec == model.spec
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_seed_makes_weights_reproducible_and_defaults_are_glorot_uniform():
    a, b, c = build(MNIST, seed=3), build(MNIST, seed=3), build(MNIST, seed=4)
    w = a.layers["dense"].weight
    assert torch.equal(w, b.layers["dense"].weight) and not torch.equal(w, c.layers["dense"].weight)
    limit = math.sqrt(6 / (13 * 13 * 8 + 10))
    assert w.abs().max() <= limit and w.abs().max() > 0.9 * limit
    assert torch.count_nonzero(a.layers["dense"].bias) == 0  # bias_initializer zeros


@pytest.mark.parametrize(
    ("name", "std"),
    [("he_normal", math.sqrt(2 / 400)), ("lecun_normal", math.sqrt(1 / 400)), ("glorot_normal", math.sqrt(2 / 800)), ({"type": "random_normal", "stddev": 0.01}, 0.01)],
)
def test_initialisers_have_kerass_standard_deviation(name, std):
    model = build({"input_shape": [400], "layers": [{"type": "Dense", "units": 400, "kernel_initializer": name}]}, seed=0)
    w = model.layers["dense"].weight
    assert w.std().item() == pytest.approx(std, rel=0.03)
    if isinstance(name, str):  # Keras truncates its variance-scaling normals at 2 (scaled) std
        assert w.abs().max().item() <= 2 * std / 0.87962566103423978 + 1e-6


def test_constant_initialisers():
    model = build({"input_shape": [3], "layers": [{"type": "Dense", "units": 2, "kernel_initializer": "ones", "bias_initializer": {"type": "constant", "value": 0.5}}]})
    assert torch.equal(model.layers["dense"].weight, torch.ones(2, 3))
    assert torch.equal(model.layers["dense"].bias, torch.full((2,), 0.5))


def test_regularization_loss_is_kerass_penalty():
    spec = {
        "input_shape": [4, 4, 2],
        "layers": [
            {"type": "Conv2D", "filters": 3, "kernel_size": 3, "kernel_regularizer": "l2"},
            {"type": "Flatten"},
            {"type": "Dense", "units": 2, "kernel_regularizer": {"l1": 0.1}, "bias_regularizer": {"type": "l1_l2", "l1": 0.2, "l2": 0.3}, "bias_initializer": "ones"},
        ],
    }
    model = build(spec, seed=0)
    conv, dense = model.layers["conv2d"], model.layers["dense"]
    expected = 0.01 * conv.weight.square().sum() + 0.1 * dense.weight.abs().sum() + 0.2 * 2 + 0.3 * 2
    torch.testing.assert_close(regularization_loss(model), expected)
    regularization_loss(model).backward()
    assert conv.weight.grad is not None
    assert regularization_loss(build(MNIST)).item() == 0.0


def test_trainable_false_freezes_weights_through_an_optimiser_step():
    spec = {
        "input_shape": [8, 8, 3],
        "layers": [
            {"type": "Conv2D", "filters": 4, "kernel_size": 3, "trainable": False},
            {"type": "BatchNormalization", "trainable": False},
            {"type": "Conv2D", "filters": 4, "kernel_size": 3},
            {"type": "Flatten"},
            {"type": "Dense", "units": 2},
        ],
    }
    model = build(spec, seed=0)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("layers.conv2d.", "layers.batch_normalization."))}
    live = model.layers["conv2d_1"].weight.clone()
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    loss = model(torch.randn(5, 3, 8, 8)).square().mean()
    loss.backward()
    optimiser.step()
    for key, value in frozen.items():
        assert torch.equal(model.state_dict()[key], value), key  # incl. BN moving statistics
    assert not torch.equal(model.layers["conv2d_1"].weight, live)
    s = summary(model)
    assert (s.trainable_params, s.non_trainable_params) == (148 + 130, 112 + 16)
    assert [row.trainable for row in s.layers] == [False, False, True, True, True]


def test_residual_and_inception_graphs_run():
    spec = {
        "input_shape": [8, 8, 4],
        "layers": [
            {"type": "Conv2D", "name": "a", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
            {"type": "Conv2D", "name": "b", "filters": 4, "kernel_size": 3, "padding": "same"},
            {"type": "Add", "name": "res", "inputs": ["input_layer", "b"]},
            {"type": "Conv2D", "name": "one", "filters": 2, "kernel_size": 1, "inputs": ["res"]},
            {"type": "MaxPooling2D", "name": "pool", "pool_size": 3, "strides": 1, "padding": "same", "inputs": ["res"]},
            {"type": "Concatenate", "name": "cat", "inputs": ["one", "pool"]},
            {"type": "GlobalAveragePooling2D"},
        ],
    }
    model = build(spec, seed=0)
    x = torch.randn(2, 4, 8, 8)
    b = model.layers["b"](model.layers["a"](x))
    res = x + b
    expected = torch.cat([model.layers["one"](res), torch.nn.functional.max_pool2d(res, 3, 1, 1)], 1).mean((2, 3))
    torch.testing.assert_close(model(x), expected)
    rows = summary(model).layers
    assert [r.name for r in rows][:2] == ["input_layer", "a"] and rows[-1].output_shape == (6,)
    assert "Connected to" in str(summary(model)) and "res[0][0]" in str(summary(model))


def _one_layer_specs():
    image = [6, 6, 4]
    seq = [8, 4]
    yield "Conv2D", image, {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "groups": 2, "activation": "prelu"}
    yield "Conv1D", seq, {"filters": 3, "kernel_size": 3, "padding": "causal", "activation": "leaky_relu"}
    yield "Conv2DTranspose", image, {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "abs"}
    yield "MaxPooling2D", image, {"padding": "same", "strides": 2, "pool_size": 3}
    yield "AveragePooling2D", image, {"padding": "same", "pool_size": 2, "strides": 3}
    yield "MaxPooling1D", seq, {}
    yield "AveragePooling1D", seq, {"pool_size": 3, "padding": "same"}
    for kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        yield kind, image, {}
    for kind in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        yield kind, seq, {"keepdims": True}
    yield "UpSampling2D", image, {"interpolation": "bilinear"}
    yield "UpSampling1D", seq, {"size": 3}
    yield "BedOfNailsUpSampling2D", image, {"size": [2, 3]}
    yield "Dense", image, {"units": 5, "activation": "gelu"}
    yield "Flatten", image, {}
    yield "Reshape", image, {"target_shape": [36, 4]}
    yield "Dropout", image, {"rate": 0.5}
    yield "SpatialDropout2D", image, {"rate": 0.5}
    yield "SpatialDropout1D", seq, {"rate": 0.5}
    yield "BatchNormalization", image, {}
    yield "ZeroPadding2D", image, {"padding": [[1, 0], [2, 1]]}
    yield "ZeroPadding1D", seq, {"padding": 2}
    yield "Cropping2D", image, {"cropping": 1}
    yield "Cropping1D", seq, {}
    yield "Activation", image, {"activation": "swish"}
    yield "ReLU", image, {"max_value": 6.0}
    yield "LeakyReLU", image, {"alpha": 0.1}
    yield "PReLU", image, {"shared_axes": [1, 2], "alpha_initializer": {"type": "constant", "value": 0.25}}
    yield "ELU", image, {}
    yield "Softmax", image, {}


ONE_LAYER = list(_one_layer_specs())


def test_one_layer_specs_cover_every_non_merge_type():
    merges = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Input"}
    assert {kind for kind, _, _ in ONE_LAYER} == set(LAYER_TYPES) - merges


@pytest.mark.parametrize(("kind", "shape", "args"), ONE_LAYER, ids=[k for k, _, _ in ONE_LAYER])
def test_every_layer_type_runs_forward_and_backward(kind, shape, args):
    spec = {"input_shape": shape, "layers": [{"type": kind, **args}]}
    model = build(spec, seed=0)
    model.train()
    x = torch.randn(3, shape[-1], *shape[:-1], requires_grad=True)
    y = model(x)
    expected = summary(model).layers[-1].output_shape
    channels_last = tuple(y.shape[2:]) + tuple(y.shape[1:2]) if y.dim() > 2 else tuple(y.shape[1:])
    assert channels_last == expected
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for p in model.parameters():
        assert p.grad is not None


@pytest.mark.parametrize("kind", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"])
def test_every_merge_type_runs_forward_and_backward(kind):
    spec = {
        "input_shape": [4, 4, 2],
        "layers": [
            {"type": "Conv2D", "name": "c", "filters": 2, "kernel_size": 1},
            {"type": kind, "name": "m", "inputs": ["input_layer", "c"]},
        ],
    }
    model = build(spec, seed=0)
    x = torch.randn(2, 2, 4, 4, requires_grad=True)
    c = model.layers["c"](x)
    expected = {
        "Add": x + c,
        "Subtract": x - c,
        "Multiply": x * c,
        "Average": (x + c) / 2,
        "Maximum": torch.maximum(x, c),
        "Minimum": torch.minimum(x, c),
        "Concatenate": torch.cat([x, c], 1),
    }[kind]
    y = model(x)
    torch.testing.assert_close(y, expected)
    y.sum().backward()
    assert model.layers["c"].weight.grad is not None


def test_batchnorm_counts_and_keras_defaults():
    model = build({"input_shape": [5, 5, 8], "layers": [{"type": "BatchNormalization", "center": False}]})
    bn = model.layers["batch_normalization"]
    assert bn.eps == 1e-3 and bn.momentum == pytest.approx(0.01) and bn.bias is None
    count = count_params(model)
    assert (count.trainable, count.non_trainable) == (8, 16)
