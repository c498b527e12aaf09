"""Issue 13: cnnlab.nn refuses a bad argument as Keras does: the layer and the argument named, and a fix.

The error is a CnnlabError (one line in the CLI) and a ValueError (code that
catches torch's ValueError keeps working).
"""

from __future__ import annotations

import pytest
import torch

import cnnlab.nn as cnn
from cnnlab.errors import CnnlabError
from cnnlab.nn.activations import activation, activation_options
from cnnlab.nn.errors import LayerArgumentError
from cnnlab.nn.init import initialize
from cnnlab.nn.lenet import PartialConv2d
from cnnlab.nn.padding import output_length


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: cnn.Conv2d(1, 2, 3, padding="foo"), "Conv2d: argument 'padding': must be one of 'valid', 'same', got 'foo' Fix: use padding='valid' or 'same'"),
        (lambda: cnn.Conv1d(1, 2, 3, padding="full"), "Conv1d: argument 'padding': must be one of 'valid', 'same', 'causal', got 'full' Fix: use padding='valid' or 'same'"),
        (lambda: cnn.Conv2d(1, 2, 0), "Conv2d: argument 'kernel_size': must be a positive integer or 2 of them, got 0 Fix: use e.g. kernel_size=(3, 3)"),
        (lambda: cnn.Conv2d(1, 2, 3, stride=(1, 2, 3)), "Conv2d: argument 'stride': must be a positive integer or 2 of them, got (1, 2, 3) Fix: use e.g. stride=(3, 3)"),
        (lambda: cnn.Conv1d(1, 2, 3, dilation=-1), "Conv1d: argument 'dilation': must be a positive integer or 1 of them, got -1 Fix: use e.g. dilation=3"),
        (lambda: cnn.ConvTranspose2d(1, 2, 3, padding="causal"), "ConvTranspose2d: argument 'padding': must be one of 'valid', 'same', got 'causal' Fix: use padding='valid' or 'same'"),
        (lambda: cnn.MaxPool2d(2, padding="full"), "MaxPool2d: argument 'padding': must be one of 'valid', 'same', got 'full' Fix: use padding='valid' or 'same'"),
        (lambda: cnn.AvgPool1d(0), "AvgPool1d: argument 'pool_size': must be a positive integer or 1 of them, got 0 Fix: use e.g. pool_size=3"),
        (lambda: cnn.MaxPool2d(2, strides=True), "MaxPool2d: argument 'strides': must be a positive integer or 2 of them, got True Fix: use e.g. strides=(3, 3)"),
        (lambda: cnn.UpSampling2d(2, interpolation="cubic"), "UpSampling2d: argument 'interpolation': must be one of 'nearest', 'bilinear', got 'cubic' Fix: use interpolation='nearest' or 'bilinear'"),
        (lambda: output_length(5, 3, 1, "reflect"), "output_length: argument 'padding': must be one of 'valid', 'same', 'causal', got 'reflect' Fix: use padding='valid' or 'same'"),
        (lambda: PartialConv2d(3, [[0, 1], [2, 3]]), "PartialConv2d: argument 'table': output map 1 names input map 3, but there are 3 (0..2) Fix: name input maps 0..2 only"),
        (lambda: initialize(torch.empty(2, 2), "he_normall"), "initialize: argument 'name': unknown initializer 'he_normall' Fix: did you mean 'he_normal'?"),
        (lambda: activation("rleu"), "activation: argument 'name': unknown activation 'rleu' Fix: did you mean 'relu'?"),
        (lambda: activation("relu", alpha=0.1), "activation 'relu': argument 'alpha': relu has no option 'alpha' Fix: remove the options: it takes none"),
        (lambda: activation("leaky_relu", slope=0.1), "activation 'leaky_relu': argument 'slope': leaky_relu has no option 'slope' Fix: did you mean 'negative_slope'?"),
        (lambda: activation("elu", alpha="big"), "activation 'elu': argument 'alpha': must be a finite number, got 'big' Fix: write e.g. alpha: 1.0"),
        (lambda: activation("gelu", approximate=1), "activation 'gelu': argument 'approximate': must be true or false, got 1 Fix: write approximate: true or approximate: false"),
        (lambda: activation("prelu"), "activation 'prelu': argument 'channels': prelu needs the channel count Fix: pass channels=C"),
    ],
)
def test_bad_arguments_name_the_layer_and_argument(make, expected: str) -> None:  # noqa: ANN001
    with pytest.raises(LayerArgumentError) as caught:
        make()
    assert str(caught.value) == expected
    assert isinstance(caught.value, CnnlabError) and isinstance(caught.value, ValueError)


def test_batchnorm_without_a_channel_axis() -> None:
    with pytest.raises(ValueError, match=r"^BatchNormalization: argument 'input': expected a tensor with a batch and a channel axis, got shape \(4,\) Fix: pass a \(N, C, \.\.\.\) tensor$"):
        cnn.BatchNorm(4)(torch.ones(4))


def test_activation_options_are_read_from_the_factories() -> None:
    assert activation_options("leaky_relu") == {"negative_slope": 0.2, "alpha": None}
    assert activation_options("relu") == {}
    assert activation_options("softplus") == {"beta": 1.0, "threshold": 20.0}
    assert activation_options("prelu") == {"init": 0.25}
    # The options that pass the check do reach the module.
    assert activation("leaky_relu", alpha=0.1).negative_slope == 0.1
    assert activation("elu", alpha=2).alpha == 2
