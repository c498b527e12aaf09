"""Specs that cannot work are refused before anything runs, saying where, what and how to fix."""

from __future__ import annotations

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.spec import SpecError, build, load_spec, summary


def _error(spec) -> SpecError:
    with pytest.raises(SpecError) as caught:
        build(spec)
    return caught.value


def test_unknown_type_suggests_the_closest():
    error = _error({"input_shape": [8, 8, 1], "layers": [{"type": "Conv2d", "filters": 2, "kernel_size": 3}]})
    assert "layers[0]" in str(error) and "field 'type'" in str(error)
    assert "unknown layer type 'Conv2d'" in str(error) and "did you mean 'Conv2D'?" in str(error)


def test_unknown_argument_suggests_the_closest():
    error = _error({"input_shape": [8, 8, 1], "layers": [{"type": "Conv2D", "filters": 2, "kernal_size": 3}]})
    assert "layers[0] 'conv2d' (Conv2D), field 'kernal_size'" in str(error)
    assert "did you mean 'kernel_size'?" in str(error)


def test_kernel_larger_than_input_names_layer_field_shapes_and_fix():
    spec = {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "Conv2D", "filters": 8, "kernel_size": 3},
            {"type": "MaxPooling2D"},
            {"type": "Conv2D", "name": "big", "filters": 8, "kernel_size": 15},
            {"type": "Flatten"},
        ],
    }
    error = _error(spec)
    message = str(error)
    assert "layers[2] 'big' (Conv2D), field 'kernel_size'" in message
    assert "kernel 15x15 is larger than its input 13x13 (input shape (None, 13, 13, 8)) under padding='valid'" in message
    assert "Fix: use padding='same'" in message
    # the table up to the failing layer comes with the error
    assert [row.name for row in error.partial.layers] == ["conv2d", "max_pooling2d"]
    assert error.partial.layers[-1].output_shape == (13, 13, 8)
    assert "Total params: 80" in str(error.partial)


def test_conv_after_flatten_is_refused_like_keras():
    error = _error({"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Conv2D", "filters": 2, "kernel_size": 3}]})
    assert "Conv2D takes an image (height, width, channels), but its input has shape (None, 64)" in str(error)


def test_dense_on_an_image_is_accepted_like_keras():
    model = build({"input_shape": [4, 4, 3], "layers": [{"type": "Dense", "units": 5}]})
    assert summary(model).layers[0].output_shape == (4, 4, 5)


def test_add_with_mismatched_shapes_shows_both():
    spec = {
        "input_shape": [8, 8, 3],
        "layers": [
            {"type": "Conv2D", "name": "c", "filters": 4, "kernel_size": 3},
            {"type": "Add", "name": "join", "inputs": ["input_layer", "c"]},
        ],
    }
    error = _error(spec)
    assert "layers[1] 'join' (Add), field 'inputs'" in str(error)
    assert "(None, 8, 8, 3), (None, 6, 6, 4)" in str(error)


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"type": "Conv2D", "filters": 2, "kernel_size": -3}, "kernel_size"),
        ({"type": "Conv2D", "filters": -2, "kernel_size": 3}, "filters"),
        ({"type": "ZeroPadding2D", "padding": -1}, "padding"),
        ({"type": "Dense", "units": 0}, "units"),
        ({"type": "Dropout", "rate": 1.5}, "rate"),
        ({"type": "Conv2D", "filters": 2}, "kernel_size"),
        ({"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "smae"}, "padding"),
        ({"type": "Conv2D", "filters": 2, "kernel_size": 3, "activation": "rleu"}, "activation"),
        ({"type": "Conv2D", "filters": 2, "kernel_size": 3, "kernel_initializer": "he_norm"}, "kernel_initializer"),
        ({"type": "Conv2D", "filters": 2, "kernel_size": 3, "kernel_regularizer": "l3"}, "kernel_regularizer"),
        ({"type": "Conv2D", "filters": 2, "kernel_size": 3, "trainable": "no"}, "trainable"),
        ({"type": "Reshape", "target_shape": [5, 5]}, "target_shape"),
    ],
)
def test_bad_values_and_negative_sizes_name_the_field(layer, field):
    error = _error({"input_shape": [8, 8, 1], "layers": [layer]})
    assert f"field '{field}'" in str(error) and "Fix:" in str(error)


def test_negative_input_shape_and_missing_input_shape():
    assert "input_shape" in str(_error({"input_shape": [8, -8, 1], "layers": [{"type": "Flatten"}]}))
    assert "input shape is missing" in str(_error({"layers": [{"type": "Flatten"}]}))


def test_graph_reference_errors():
    later = _error({"input_shape": [4], "layers": [{"type": "Dense", "units": 2, "inputs": ["d2"]}, {"type": "Dense", "name": "d2", "units": 2}]})
    assert "input 'd2' is not an earlier layer (it comes later" in str(later)
    typo = _error({"input_shape": [4], "layers": [{"type": "Dense", "name": "first", "units": 2}, {"type": "Dense", "units": 2, "inputs": ["frist"]}]})
    assert "did you mean 'first'?" in str(typo)
    duplicate = _error({"input_shape": [4], "layers": [{"type": "Dense", "name": "d", "units": 2}, {"type": "Dense", "name": "d", "units": 2}]})
    assert "already used" in str(duplicate)


def test_errors_from_a_file_carry_the_line(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("input_shape: [28, 28, 1]\nlayers:\n  - type: Conv2D\n    filters: 8\n    kernel_size: 3\n  - type: Dense\n    unit: 10\n")
    with pytest.raises(SpecError) as caught:
        build(path)
    assert str(caught.value).startswith(f"{path}:7: layers[1] 'dense' (Dense), field 'unit': Dense has no argument 'unit'")
    assert "did you mean 'units'?" in str(caught.value)


def test_yaml_and_json_syntax_errors_name_line_and_column(tmp_path):
    bad_yaml = tmp_path / "m.yaml"
    bad_yaml.write_text("input_shape: [8, 8, 1]\nlayers:\n  - {type: Conv2D, filters: 2\n")
    with pytest.raises(SpecError, match=r"m\.yaml:4:1: invalid YAML"):
        load_spec(bad_yaml)
    bad_json = tmp_path / "m.json"
    bad_json.write_text('{"input_shape": [8, 8, 1],\n "layers": [}\n')
    with pytest.raises(SpecError, match=r"m\.json:2:13: invalid JSON"):
        load_spec(bad_json)
    with pytest.raises(SpecError, match="no spec file"):
        load_spec(tmp_path / "absent.yaml")


def test_spec_errors_are_cnnlab_errors(tmp_path, capsys):
    from cnnlab.cli import main

    spec = tmp_path / "m.yaml"
    spec.write_text("input_shape: [8, 8, 1]\nlayers:\n  - {type: Conv2D, filters: 2, kernel_size: 3, strides: 0}\n")
    with pytest.raises(CnnlabError) as caught:  # caught as the one error type users see
        build(load_spec(spec))
    assert isinstance(caught.value, SpecError)
    assert str(caught.value).startswith(f"{spec}:3: layers[0] 'conv2d' (Conv2D), field 'strides'")
    assert main(["summary", str(spec)]) == 2  # and the CLI prints it as one line, exit 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {caught.value}"] and " Fix: " in err[0]
