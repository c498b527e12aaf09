"""create / names / info: defaults, options, config round trip and user errors."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.models import FAMILIES, create, info, names


def test_every_family_registers_models() -> None:
    families = {info(name).family for name in names()}
    assert families == set(FAMILIES)
    assert names("vgg") == ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
    for expected in ("lenet5", "alexnet", "googlenet", "resnet50", "resnet110", "plain56", "densenet161"):
        assert expected in names()


def test_info_describes_the_default_model() -> None:
    entry = info("vgg16")
    assert entry.input_shape == (224, 224, 3)
    assert entry.num_classes == 1000
    assert entry.params == 138_357_544
    assert "Simonyan" in entry.reference
    assert entry.options == {"dropout": 0.5, "pooling": None}


def test_unknown_name_lists_close_names() -> None:
    with pytest.raises(CnnlabError) as caught:
        create("resnet5")
    assert "unknown model 'resnet5'" in str(caught.value)
    assert "resnet50" in str(caught.value)
    with pytest.raises(CnnlabError, match="did you mean 'densenet121'"):
        info("DenseNet-121")


def test_config_rebuilds_the_model_and_is_json() -> None:
    model = create("resnet20", num_classes=4, input_shape=(24, 24, 1), include_top=True)
    assert model.input_shape == (24, 24, 1)
    assert model.config == {"name": "resnet20", "num_classes": 4, "input_shape": [24, 24, 1], "include_top": True}
    config = json.loads(json.dumps(model.config))
    again = create(**config)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    backbone = create("densenet121", include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert backbone.config["pooling"] == "avg" and backbone.config["include_top"] is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 0}, "num_classes must be a positive integer"),
        ({"num_classes": 2.5}, "num_classes must be a positive integer"),
        ({"input_shape": (16, 16, 3)}, "smaller than the 32x32"),
        ({"input_shape": (32, 32)}, "input_shape must be"),
        ({"input_shape": (32, 32, 0)}, "channels"),
        ({"depth": 3}, "unknown option"),
        ({"pooling": "avg"}, "only applies to a backbone"),
        ({"include_top": False, "pooling": "mean"}, "option 'pooling': must be None, 'avg' or 'max', got 'mean'"),
    ],
)
def test_user_errors_name_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(CnnlabError, match=message):
        create("resnet18", **kwargs)


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(CnnlabError, match="conv_bias=True"):
        create("resnet18", bias=False)
    with pytest.raises(CnnlabError, match="'rbf'"):
        create("lenet5", output="softmax")
    with pytest.raises(CnnlabError, match="JSON"):
        create("googlenet", dropout=torch.tensor(0.1))


def test_alexnet_needs_63_pixels() -> None:
    assert info("alexnet").min_size == 63
    with pytest.raises(CnnlabError, match="63x63"):
        create("alexnet", input_shape=(62, 62, 3))
