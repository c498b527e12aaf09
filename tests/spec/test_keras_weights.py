"""Loading Keras-layout weights into a built spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.spec import SpecError, build, keras_to_torch, set_keras_weights


def test_conv_kernel_maps_to_torch_layout_and_flatten_dense_line_up():
    model = build({"input_shape": [3, 3, 2], "layers": [{"type": "Conv2D", "filters": 4, "kernel_size": 2}, {"type": "Flatten"}, {"type": "Dense", "units": 1}]})
    kernel = np.arange(2 * 2 * 2 * 4, dtype=np.float32).reshape(2, 2, 2, 4)
    set_keras_weights(model, "conv2d", [kernel, np.zeros(4, np.float32)])
    weight = model.layers["conv2d"].weight
    assert weight.shape == (4, 2, 2, 2) and weight[3, 1, 0, 1] == kernel[0, 1, 1, 3]
    dense = np.arange(16, dtype=np.float32).reshape(16, 1)
    set_keras_weights(model, "dense", [dense, np.zeros(1, np.float32)])
    x = torch.randn(1, 2, 3, 3)
    features = model.layers["conv2d"](x).permute(0, 2, 3, 1).reshape(1, -1)  # Keras's (H, W, C) order
    torch.testing.assert_close(model(x), features @ torch.from_numpy(dense))


def test_prelu_alpha_moves_channels_first():
    alpha = np.arange(90, dtype=np.float32).reshape(5, 6, 3)  # Keras (H, W, C), every value distinct
    moved = keras_to_torch("PReLU", "weight", alpha)
    assert tuple(moved.shape) == (3, 5, 6)
    assert float(moved[2, 4, 1]) == alpha[4, 1, 2] == 77 and float(moved[1, 0, 3]) == alpha[0, 3, 1] == 10
    assert np.array_equal(np.asarray(moved), alpha.transpose(2, 0, 1))


def test_wrong_layer_count_or_shape_is_refused():
    model = build({"input_shape": [4], "layers": [{"type": "Dense", "units": 2, "use_bias": False}]})
    with pytest.raises(SpecError, match="no layer named 'nope'"):
        set_keras_weights(model, "nope", [])
    with pytest.raises(SpecError, match="holds 1 weights"):
        set_keras_weights(model, "dense", [np.zeros((4, 2)), np.zeros(2)])
    with pytest.raises(SpecError, match="maps to"):
        set_keras_weights(model, "dense", [np.zeros((3, 2))])
