"""Summaries of plain modules (forward hooks) and the JSON / text forms."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cnnlab.nn as cnn
from cnnlab.errors import CnnlabError
from cnnlab.spec import build, summary
from cnnlab.spec.summary import readable_memory_size


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))  # a container's own parameter gets its own row
        self.features = nn.Sequential(cnn.Conv2d(3, 8, 3, padding="same", activation=nn.ReLU()), nn.BatchNorm2d(8), cnn.MaxPool2d(2))
        self.head = nn.Sequential(cnn.Flatten(), cnn.Dense(8 * 4 * 4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)) * self.scale


def test_plain_module_summary_rows_shapes_and_counts():
    model = Net().train()
    s = summary(model, input_shape=(8, 8, 3))
    rows = [(r.name, r.type, r.output_shape, r.params) for r in s.layers]
    assert rows == [
        ("features.0", "Conv2d", (8, 8, 8), 224),
        ("features.1", "BatchNorm2d", (8, 8, 8), 32),
        ("features.2", "MaxPool2d", (4, 4, 8), 0),
        ("head.0", "Flatten", (128,), 0),
        ("head.1", "Dense", (10,), 1290),
        ("Net", "Net", (10,), 1),
    ]
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (1547, 1531, 16)
    assert model.training and model.features[1].training  # modes restored
    assert s.name == "net"


def test_plain_module_uses_its_input_shape_attribute_and_needs_one():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten())
    with pytest.raises(CnnlabError, match="input_shape"):
        summary(model)
    model.input_shape = (5, 5, 1)
    assert summary(model).layers[-1].output_shape == (18,)
    with pytest.raises(CnnlabError, match="failed on an input of shape"):
        summary(model, input_shape=(2, 2, 1))


def test_frozen_plain_module_counts_non_trainable():
    conv = nn.Conv2d(1, 2, 3)
    conv.requires_grad_(False)
    s = summary(nn.Sequential(conv), input_shape=(5, 5, 1))
    assert (s.trainable_params, s.non_trainable_params) == (0, 20) and s.layers[0].trainable is False


def test_to_dict_is_the_documented_json_form():
    s = summary(build({"input_shape": [6, 6, 1], "layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 3}, {"type": "GlobalMaxPooling2D"}]}))
    assert json.loads(json.dumps(s.to_dict())) == {
        "name": "sequential",
        "layers": [
            {"name": "conv2d", "type": "Conv2D", "output_shape": [4, 4, 2], "params": 20, "trainable": True},
            {"name": "global_max_pooling2d", "type": "GlobalMaxPooling2D", "output_shape": [2], "params": 0, "trainable": True},
        ],
        "total_params": 20,
        "trainable_params": 20,
        "non_trainable_params": 0,
    }


def test_summary_accepts_a_spec_directly_and_reflects_later_freezing():
    spec = {"input_shape": [4], "layers": [{"type": "Dense", "units": 3}]}
    assert summary(spec).total_params == 15
    model = build(spec)
    model.layers["dense"].requires_grad_(False)
    assert (summary(model).trainable_params, summary(model).non_trainable_params) == (0, 15)


@pytest.mark.parametrize(("size", "text"), [(0, "0.00 B"), (336, "336.00 B"), (375848, "367.04 KB"), (4 * 3_000_000, "11.44 MB")])
def test_memory_sizes_read_like_keras(size, text):
    assert readable_memory_size(size) == text


def test_print_writes_the_table(capsys):
    summary({"input_shape": [4], "layers": [{"type": "Dense", "units": 3}]}).print()
    out = capsys.readouterr().out
    assert "dense (Dense)" in out and "Total params: 15 (60.00 B)" in out
