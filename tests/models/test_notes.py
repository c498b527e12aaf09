"""The notes' own networks: layers and counts as the seeds print them."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.models import count, create
from cnnlab.spec import summary


def rows(name: str, **kwargs) -> list[tuple[tuple[int, ...], int]]:
    table = summary(create(name, **kwargs))
    return [(tuple(row.output_shape), row.params) for row in table.layers]


def test_mnist_3conv_is_seed_003_summary_table() -> None:
    assert rows("mnist_3conv") == [
        ((26, 26, 32), 320),
        ((13, 13, 32), 0),
        ((11, 11, 64), 18496),
        ((5, 5, 64), 0),
        ((3, 3, 128), 73856),
        ((1, 1, 128), 0),
        ((128,), 0),
        ((10,), 1290),
    ]
    assert count("mnist_3conv").total == 93_962


def test_fashion_mnist_practice_shapes_of_seed_002() -> None:
    # "de 24x24 a 4x4", 32 then 64 maps
    shapes = [shape for shape, _ in rows("fashion_mnist_practice")]
    assert shapes[:4] == [(24, 24, 32), (12, 12, 32), (8, 8, 64), (4, 4, 64)]
    assert count("fashion_mnist_practice", hidden=64).total == 832 + 51_264 + 1024 * 64 + 64 + 650


def test_lenet_keras_of_seed_003() -> None:
    table = rows("lenet_keras")
    assert [shape for shape, _ in table] == [(28, 28, 6), (14, 14, 6), (10, 10, 16), (5, 5, 16), (400,), (120,), (84,), (10,)]
    assert [p for _, p in table] == [156, 0, 2416, 0, 0, 48_120, 10_164, 850]


def test_cats_vs_dogs_one_sigmoid_unit() -> None:
    model = create("cats_vs_dogs").eval()
    assert [shape for shape, _ in rows("cats_vs_dogs")][:4] == [(62, 62, 32), (31, 31, 32), (29, 29, 32), (14, 14, 32)]
    with torch.no_grad():
        out = model(torch.randn(3, 3, 64, 64))
    assert out.shape == (3, 1) and ((out > 0) & (out < 1)).all()
    two = create("cats_vs_dogs", num_classes=2).eval()
    with torch.no_grad():
        torch.testing.assert_close(two(torch.randn(3, 3, 64, 64)).sum(1), torch.ones(3))


def test_allconv_mnist_has_no_pooling() -> None:
    table = summary(create("allconv_mnist"))
    assert not any("Pool" in row.type for row in table.layers)
    assert [tuple(r.output_shape) for r in table.layers][:4] == [(26, 26, 32), (12, 12, 32), (10, 10, 64), (4, 4, 64)]


def test_bonet_first_layer_frozen_and_linear_output() -> None:
    for name in ("bonet_simple", "bonet"):
        with torch.device("meta"):
            model = create(name)
        frozen = [p for p in model.parameters() if not p.requires_grad]
        assert sum(p.numel() for p in frozen) == 96 * 7 * 7 * 1 + 96
    with torch.device("meta"):
        stage = summary(create("bonet").features)  # a SpecModel: rows come from the spec, nothing runs
    maps = [tuple(r.output_shape) for r in stage.layers]
    assert maps == [
        (107, 107, 96), (53, 53, 96), (49, 49, 2048), (24, 24, 2048), (22, 22, 1024),
        (11, 11, 1024), (9, 9, 1024), (4, 4, 1024), (2, 2, 1024), (1, 1, 1024),
    ]  # fmt: skip
    model = create("bonet_simple", input_shape=(64, 64, 1)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, 1)
    literal = count("bonet_simple", top="flatten")
    assert literal.total == 4800 + 2_458_624 + 24 * 24 * 1024 * 2048 + 2048 + 2049


@pytest.mark.parametrize("name", ["mnist_3conv", "fashion_mnist_practice", "cats_vs_dogs", "lenet_keras", "bonet"])
def test_conv_head_is_the_dense_head_as_convolutions(name: str) -> None:
    # P.4 / P.5: only convolutions (+ a reshape and the activation); a conv whose kernel
    # covers the whole map has exactly the dense layer's parameters.
    assert count(name, head="conv") == count(name)
    with torch.device("meta"):
        top = summary(create(name, head="conv").head)
    assert {row.type for row in top.layers} <= {"Conv2D", "Flatten", "Activation"}
    assert top.layers[0].type == "Conv2D"


def test_conv_heads_compute_the_same_function_as_dense_heads() -> None:
    dense = create("mnist_3conv").eval()
    conv = create("mnist_3conv", head="conv").eval()
    conv.features.load_state_dict(dense.features.state_dict())
    w = dense.head.layers.dense.weight  # (10, 128) on a 1x1x128 map
    with torch.no_grad():
        conv.head.layers.conv2d.weight.copy_(w.view(10, 128, 1, 1))
        conv.head.layers.conv2d.bias.copy_(dense.head.layers.dense.bias)
        x = torch.randn(4, 1, 28, 28)
        torch.testing.assert_close(conv(x), dense(x))


def test_output_activation_rules() -> None:
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        probabilities = create("mnist_3conv").eval()(x)
        torch.testing.assert_close(probabilities.sum(1), torch.ones(2))
        regression = create("mnist_3conv", num_classes=1).eval()(x)  # a 1-unit softmax would be constant
        assert regression.shape == (2, 1) and not torch.allclose(regression, torch.ones(2, 1))
        logits = create("mnist_3conv", output_activation="linear").eval()(x)
        assert not torch.allclose(logits.sum(1), torch.ones(2))
    with pytest.raises(CnnlabError, match="output_activation"):
        create("mnist_3conv", output_activation="tanh")
    with pytest.raises(CnnlabError, match="option 'head': must be 'dense' or 'conv', got 'mlp'"):
        create("mnist_3conv", head="mlp")
    with pytest.raises(CnnlabError, match="option 'top': must be 'flatten' or 'gap', got 'avg'"):
        create("bonet", top="avg")
