"""Issue 13: spec files and sizes a user writes never give a traceback.

Each case runs ``cnnlab summary`` in one process and checks the exact line:
exit 2, one line on stderr naming the file / layer / field, and a fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.ops.limits import MAX_SIZE, format_bytes
from cnnlab.spec import build, summary
from cnnlab.spec.build import with_input_shape
from cnnlab.spec.load import MAX_SPEC_BYTES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GIB = 1024**3


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)



def _spec(text: str, name: str = "m.yaml") -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


# --- files that are not what they claim ----------------------------------------


def test_not_utf8(refused) -> None:
    Path("m.yaml").write_bytes(b"input_shape: [8, 8, 1]\n# caf\xe9\n")
    assert refused("summary", "m.yaml") == (
        "error: m.yaml: is not UTF-8 text (byte 0xe9 at offset 28) Fix: save the spec as UTF-8 YAML or JSON text (not a binary file)"
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("m.yaml", "[" * 5000 + "]" * 5000),
        ("m.json", "[" * 5000 + "]" * 5000),
        ("m.yaml", "- " * 3000 + "x"),
        ("m.yaml", "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 1500))),
    ],
)
def test_nested_too_deep(refused, name: str, text: str) -> None:
    assert refused("summary", _spec(text, name)) == (
        f"error: {name}: is nested too deeply to read Fix: a spec is a mapping with a list of layers: a few levels of nesting, not hundreds"
    )


def test_not_yaml_or_json(refused) -> None:
    assert refused("summary", _spec("just some words\n")) == (
        "error: m.yaml: a spec is a mapping with 'input_shape' and 'layers' (or a list of layers), got str "
        "Fix: write e.g. {input_shape: [28, 28, 1], layers: [{type: Conv2D, filters: 32, kernel_size: 3}]}"
    )
    line = refused("summary", _spec("a: [1, 2\n"))
    assert line.startswith("error: m.yaml:2:1: invalid YAML: ")
    Path("big.yaml").write_bytes(b"#" * (MAX_SPEC_BYTES + 1))
    assert refused("summary", "big.yaml") == (
        f"error: big.yaml: is {MAX_SPEC_BYTES + 1:,} bytes, over the limit of {MAX_SPEC_BYTES:,} for a spec "
        "Fix: give the model spec (a few KB of YAML or JSON), not a data or weights file"
    )


def test_paths(refused) -> None:
    long_name = "s" * 300 + ".yaml"
    line = refused("summary", long_name)
    assert line.endswith("is too long for the file system (305 characters) Fix: use a shorter path (each folder or file name at most 255 bytes)"), line
    Path("folder.yaml").mkdir()
    assert refused("summary", "folder.yaml").startswith("error: summary: no spec file 'folder.yaml'")
    from cnnlab.spec import load_spec
    from cnnlab.errors import CnnlabError

    with pytest.raises(CnnlabError, match=r"^folder\.yaml: is a folder, not a spec file Fix: "):
        load_spec("folder.yaml")


# --- options passed through ----------------------------------------------------


def test_activation_options(refused) -> None:
    path = _spec("input_shape: [8, 8, 1]\nlayers:\n  - {type: Conv2D, filters: 2, kernel_size: 3, activation: {type: relu, alpha: 0.1}}\n")
    assert refused("summary", path) == (
        "error: m.yaml:3: layers[0] 'conv2d' (Conv2D), field 'activation': activation 'relu', option 'alpha': "
        "relu has no option 'alpha' Fix: remove the options: it takes none"
    )
    path = _spec("input_shape: [8, 8, 1]\nlayers:\n  - {type: Dense, units: 2, activation: {type: leaky_relu, slope: 0.1}}\n")
    assert refused("summary", path) == (
        "error: m.yaml:3: layers[0] 'dense' (Dense), field 'activation': activation 'leaky_relu', option 'slope': "
        "leaky_relu has no option 'slope' Fix: did you mean 'negative_slope'?"
    )
    # a valid option reaches the module
    model = build({"input_shape": [4], "layers": [{"type": "Dense", "units": 2, "activation": {"type": "leaky_relu", "alpha": 0.3}}]})
    assert model.layers["dense"].activation.negative_slope == 0.3


# --- numbers that ask for the impossible -------------------------------------------


@pytest.mark.parametrize(
    ("layer", "field", "value"),
    [
        ("{type: Dense, units: 1000000000000}", "units", 1000000000000),
        ("{type: Conv2D, filters: 99999999999, kernel_size: 3}", "filters", 99999999999),
        ("{type: Conv2D, filters: 4, kernel_size: 100000000000}", "kernel_size", 100000000000),
        ("{type: Conv2D, filters: 4, kernel_size: 3, strides: [1, 100000000000000000000000]}", "strides", 100000000000000000000000),
        ("{type: ZeroPadding2D, padding: 99999999999}", "padding", 99999999999),
    ],
)
def test_sizes_over_the_bound(refused, layer: str, field: str, value: int) -> None:
    line = refused("summary", _spec(f"input_shape: [8, 8, 1]\nlayers:\n  - {layer}\n"))
    assert line.endswith(f"field '{field}': {value} is over the limit of {MAX_SIZE} for a size Fix: use a size of at most {MAX_SIZE}"), line
    assert line.startswith("error: m.yaml:3: layers[0] '")


def test_weights_the_machine_cannot_hold(refused, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cnnlab.ops.limits.available_memory", lambda: GIB)
    # 784 inputs x 10^6 units + 10^6 biases = 785,000,000 numbers = 2.9 GiB > 1 GiB; refused before allocating
    path = _spec("input_shape: [28, 28, 1]\nlayers:\n  - {type: Flatten}\n  - {type: Dense, units: 1000000}\n")
    assert refused("summary", path) == (
        "error: m.yaml:4: layers[1] 'dense' (Dense): the weights up to this layer (785,000,000 numbers, this layer 785,000,000) "
        f"would take {format_bytes(785_000_000 * 4)}, more than the 1.0 GiB of memory available "
        "Fix: use fewer filters / units, or downsample before this layer (pooling, strides) so a Dense layer sees fewer inputs"
    )
    assert format_bytes(785_000_000 * 4) == "2.9 GiB"


def test_outputs_the_machine_cannot_hold(refused, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cnnlab.ops.limits.available_memory", lambda: GIB)
    # 20000 x 20000 x 16 floats = 23.8 GiB for one sample
    path = _spec("input_shape: [20002, 20002, 1]\nlayers:\n  - {type: Conv2D, filters: 16, kernel_size: 3}\n")
    assert refused("summary", path) == (
        "error: m.yaml:3: layers[0] 'conv2d' (Conv2D): one sample's output (None, 20000, 20000, 16) would take 23.8 GiB, "
        "more than the 1.0 GiB of memory available Fix: use a smaller input_shape, fewer filters / units, or downsample before this layer (pooling, strides)"
    )
    path = _spec(f"input_shape: [{MAX_SIZE + 1}, 8, 1]\nlayers:\n  - {{type: Flatten}}\n")
    assert refused("summary", path) == (
        f"error: m.yaml:1: field 'input_shape': the input shape [{MAX_SIZE + 1}, 8, 1] has a size over the limit of {MAX_SIZE} "
        f"Fix: use sizes of at most {MAX_SIZE}, e.g. [224, 224, 3]"
    )


# --- summary --input-shape applies to spec files ----------------------------------------


def test_summary_input_shape_applies_to_a_spec_file(capsys: pytest.CaptureFixture[str], refused) -> None:
    spec = str(EXAMPLES / "003-correlacion-y-keras" / "mnist_3conv.yaml")
    assert main(["summary", spec, "--json"]) == 0
    import json

    own = json.loads(capsys.readouterr().out)
    assert own["total_params"] == 93_962  # the textbook chapter's MNIST net on 28x28
    assert main(["summary", spec, "--json", "--input-shape", "32,32,1"]) == 0
    other = json.loads(capsys.readouterr().out)
    # 32x32: conv 30 -> pool 15 -> conv 13 -> pool 6 -> conv 4 -> pool 2: flatten 2*2*128 = 512, dense 512*10 + 10 = 5,130
    # convs: 320 + 18,496 + 73,856 = 92,672; total 97,802 (28x28 gives 1 x 1 x 128: dense 1,290)
    assert other["total_params"] == 97_802
    assert other["layers"][-1]["params"] == 5_130
    line = refused("summary", spec, "--input-shape", "3,3,1")
    assert "pool_size 2x2 is larger than its input 1x1" in line


def test_with_input_shape_puts_the_shape_where_the_spec_declares_it() -> None:
    top = {"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}]}
    assert with_input_shape(top, (4, 4, 2))["input_shape"] == [4, 4, 2]
    assert top["input_shape"] == [8, 8, 1]  # a copy
    first = [{"type": "Flatten", "input_shape": [8, 8, 1]}]
    assert with_input_shape(first, [2, 2, 1])["layers"][0]["input_shape"] == [2, 2, 1]
    graph = {"layers": [{"type": "Input", "shape": [8, 8, 1]}, {"type": "Flatten"}]}
    assert with_input_shape(graph, [3, 3, 1])["layers"][0]["shape"] == [3, 3, 1]
    model = build({"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]})
    assert summary(model, input_shape=(4, 4, 1)).total_params == 4 * 4 * 2 + 2  # a built model is rebuilt on the shape asked for
    assert summary(model).total_params == 8 * 8 * 2 + 2
