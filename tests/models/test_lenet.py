"""LeNet-5 as published: per-layer counts of seed 004, the C3 table, the layers' arithmetic."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.models import create
from cnnlab.nn.lenet import LENET5_C3_TABLE, EuclideanRBF, PartialConv2d, ScaledTanh, Subsampling
from cnnlab.nn.params import count_params


def test_per_layer_counts_equal_seed_004() -> None:
    model = create("lenet5")
    layers = {**dict(model.features.named_children()), **dict(model.head.named_children())}
    counts = {name: count_params(layers[name]).trainable for name in ("c1", "s2", "c3", "s4", "c5", "f6")}
    assert counts == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}
    total = count_params(model)
    assert total.trainable == 60_000  # "En total LeNet 5 presenta 60 000 parámetros"
    assert total.non_trainable == 84 * 10  # the RBF centres, fixed as in the paper


def test_c3_connection_table_is_table_one_of_the_paper() -> None:
    # Paper: maps 0-5 take contiguous triples, 6-11 contiguous quadruples (cyclic),
    # 12-14 non-contiguous quadruples, 15 all six.
    for o in range(6):
        assert set(LENET5_C3_TABLE[o]) == {(o + i) % 6 for i in range(3)}
    for o in range(6, 12):
        assert set(LENET5_C3_TABLE[o]) == {(o - 6 + i) % 6 for i in range(4)}
    assert [set(t) for t in LENET5_C3_TABLE[12:15]] == [{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}]
    assert LENET5_C3_TABLE[15] == (0, 1, 2, 3, 4, 5)
    assert sum(len(t) for t in LENET5_C3_TABLE) == 60


def test_partial_conv_equals_sum_of_single_map_convolutions() -> None:
    torch.manual_seed(0)
    layer = PartialConv2d(6, LENET5_C3_TABLE, 5)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 6, 14, 14)
    y = layer(x)
    assert y.shape == (2, 16, 10, 10)
    expected = torch.empty_like(y)
    k = 0
    for o, inputs in enumerate(LENET5_C3_TABLE):
        acc = torch.zeros(2, 1, 10, 10)
        for i in inputs:
            acc += F.conv2d(x[:, i : i + 1], layer.weight[k].view(1, 1, 5, 5))
            k += 1
        expected[:, o : o + 1] = acc + layer.bias[o]
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    # Unconnected maps do not influence an output map at all.
    x2 = x.clone()
    x2[:, 3] += 100.0  # map 0 reads S2 maps 0, 1, 2 only
    torch.testing.assert_close(layer(x2)[:, 0], y[:, 0])
    assert not torch.allclose(layer(x2)[:, 1], y[:, 1])


def test_subsampling_is_coefficient_times_cell_sum_plus_bias() -> None:
    layer = Subsampling(2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, -2.0]))
        layer.bias.copy_(torch.tensor([1.0, 0.25]))
    x = torch.arange(2 * 4 * 5, dtype=torch.float32).view(1, 2, 4, 5)
    y = layer(x)
    assert y.shape == (1, 2, 2, 2)  # floor(5 / 2) = 2: the last column is dropped
    cell = x[0, 1, 2:4, 2:4].sum()
    assert y[0, 1, 1, 1].item() == pytest.approx(-2.0 * cell.item() + 0.25)


def test_scaled_tanh_maps_plus_minus_one_to_themselves() -> None:
    f = ScaledTanh()
    out = f(torch.tensor([-1.0, 0.0, 1.0, 50.0]))
    torch.testing.assert_close(out[:3], torch.tensor([-1.0, 0.0, 1.0]), atol=1e-4, rtol=0)
    assert out[3].item() == pytest.approx(1.7159)
    assert 1.7159 * math.tanh(2 / 3) == pytest.approx(1.0, abs=1e-4)


def test_rbf_output_is_negated_squared_distance_to_fixed_codes() -> None:
    rbf = EuclideanRBF(84, 10)
    assert not rbf.weight.requires_grad
    assert set(rbf.weight.unique().tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(EuclideanRBF(84, 10).weight, rbf.weight)  # deterministic codes
    x = torch.randn(3, 84)
    expected = -torch.cdist(x, rbf.weight) ** 2
    torch.testing.assert_close(rbf(x), expected, rtol=1e-4, atol=1e-3)
    # The closest code wins.
    assert rbf(rbf.weight[[7]]).argmax().item() == 7


def test_mnist_28x28_is_padded_into_the_32x32_field() -> None:
    model = create("lenet5", input_shape=(28, 28, 1))
    x = torch.randn(2, 1, 28, 28)
    padded = create("lenet5")
    padded.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(x), padded(F.pad(x, (2, 2, 2, 2))))


def test_dense_output_option_and_backbone() -> None:
    model = create("lenet5", num_classes=3, output="dense")
    assert count_params(model).total == 60_000 - 10_164 + 10_164 + 85 * 3
    backbone = create("lenet5", include_top=False, pooling="avg")
    assert backbone(torch.randn(2, 1, 32, 32)).shape == (2, 120)
    assert backbone.num_features == 120


def test_logit_scale_multiplies_the_rbf_logits_and_nothing_else() -> None:
    paper = create("lenet5")
    scaled = create("lenet5", logit_scale=0.05)
    assert count_params(scaled) == count_params(paper)  # 60,000 trainable, 840 fixed centres
    scaled.load_state_dict(paper.state_dict())  # the same tensors under the same names
    x = torch.randn(4, 1, 32, 32)
    torch.testing.assert_close(scaled(x), 0.05 * paper(x))
    with pytest.raises(CnnlabError, match="logit_scale 0.5 scales the RBF output and output is 'dense'"):
        create("lenet5", output="dense", logit_scale=0.5)


def test_rbf_distances_stay_float32_under_bf16_autocast() -> None:
    """Sums in the hundreds, differenced: bf16 would round them by about 1."""
    torch.manual_seed(0)
    model = create("lenet5").eval()
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features = model.head.f6_act(model.head.f6(model.head.flatten(model.features(x))))
            out = model.head.output(features)
    assert features.dtype == torch.bfloat16 and out.dtype == torch.float32
    torch.testing.assert_close(out, model.head.output(features.float()))  # exactly the fp32 distances
    assert (out - reference).abs().max() < 2.0  # only F6's own bf16 rounding remains
