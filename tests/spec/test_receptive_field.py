"""summary(..., receptive_field=True): r_out = r_in + (k-1) d j_in, j_out = j_in s, per layer."""

from __future__ import annotations

from pathlib import Path

from cnnlab.cli import main
from cnnlab.spec import summary

ROOT = Path(__file__).resolve().parents[2]


def test_three_conv_net_receptive_fields_by_hand():
    result = summary(ROOT / "examples/003-correlacion-y-keras/mnist_3conv.yaml", receptive_field=True)
    fields = [row.receptive_field[0] for row in result.layers]
    strides = [row.jump[0] for row in result.layers]
    # conv3 -> 3; pool2 -> 3+1*1 = 4; conv3 -> 4+2*2 = 8; pool -> 8+1*2 = 10; conv -> 10+2*4 = 18; pool -> 22
    assert fields == [3, 4, 8, 10, 18, 22, 22, 22]
    assert strides == [1, 2, 2, 4, 4, 8, 8, 8]
    assert result.to_dict()["layers"][5]["receptive_field"] == [22, 22]


def test_dilated_strided_and_global_layers():
    spec = {"input_shape": [32, 32, 1], "layers": [
        {"type": "Conv2D", "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
        {"type": "Conv2D", "filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
        {"type": "UpSampling2D", "size": 2},
        {"type": "GlobalAveragePooling2D"},
    ]}
    rows = summary(spec, receptive_field=True).layers
    assert [r.receptive_field[0] for r in rows] == [3, 3 + 2 * 2 * 2, 11, 32]
    assert [r.jump[0] for r in rows] == [2, 2, 1, 1]


def test_zoo_lenet5_sees_its_32x32_field(capsys):
    rows = summary(__import__("cnnlab.models", fromlist=["create"]).create("lenet5"), receptive_field=True).layers
    by_name = {r.name: r for r in rows}
    assert by_name["features.c3"].receptive_field == (14, 14)
    assert by_name["features.c5"].receptive_field == (32, 32) and by_name["features.c5"].jump == (4, 4)
    assert main(["summary", "lenet5", "--receptive-field"]) == 0
    out = capsys.readouterr().out
    assert "RF" in out and " 32 │" in out  # (with the Trainable column of its frozen RBF centres too)


def test_graph_branches_start_from_the_input_and_a_merge_takes_the_largest():
    root = ROOT / "examples/000-convolucion"
    rows = {r.name: r for r in summary(root / "inception_reducido.yaml", receptive_field=True).layers}
    assert rows["b1_1x1"].receptive_field == (1, 1)
    assert rows["b3_5x5"].receptive_field == (5, 5)  # 1x1 then 5x5, not stacked on the 3x3 branch
    assert rows["b4_proj"].receptive_field == (3, 3)
    assert rows["concat"].receptive_field == (5, 5) and rows["concat"].jump == (1, 1)
