"""ONNX export: ONNX Runtime agrees with cnnlab to 1e-4 on every zoo family and on the layers torch lacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from serve_helpers import make_bundle  # noqa: E402

from cnnlab.errors import CnnlabError  # noqa: E402
from cnnlab.inference import load  # noqa: E402
from cnnlab.serve.export import check_images, export_onnx  # noqa: E402
from cnnlab.serve.onnx_model import load_onnx  # noqa: E402

# One model of every zoo family, at a small input size the family allows (the check is the same at any size).
FAMILIES = [
    ("lenet5", None, {}),  # LeNet-5 as published: the C3 partial connections
    ("mnist_3conv", None, {}),
    ("cats_vs_dogs", (32, 32, 3), {}),  # one sigmoid unit
    pytest.param("alexnet", (64, 64, 3), {}, marks=pytest.mark.slow),
    pytest.param("vgg11_bn", (32, 32, 3), {}, marks=pytest.mark.slow),
    pytest.param("googlenet", (32, 32, 3), {}, marks=pytest.mark.slow),
    pytest.param("resnet18", (32, 32, 3), {}, marks=pytest.mark.slow),
    ("resnet20", (16, 16, 3), {}),
    pytest.param("densenet121", (32, 32, 3), {}, marks=pytest.mark.slow),
    ("cifar_speedrun", (16, 16, 3), {"widths": [16, 32, 32]}),
]


def _cnnlab_probabilities(bundle, images: np.ndarray) -> np.ndarray:
    return load(bundle).predict(images)


@pytest.mark.parametrize("name,shape,options", FAMILIES)
def test_zoo_family_matches_cnnlab(tmp_path, name, shape, options):
    classes = ["cat", "dog"] if name == "cats_vs_dogs" else [f"c{i}" for i in range(5)]
    bundle = make_bundle(tmp_path / "b", name, shape=shape, classes=classes if name != "cats_vs_dogs" else None,
                         **options)
    out = tmp_path / "model.onnx"
    result = export_onnx(bundle, out)
    assert out.is_file() and result.path == out
    assert result.max_diff <= 1e-4
    exported = load_onnx(out)
    h, w, c = exported.input_shape
    images = check_images((h, w, c), 9, seed=5)
    theirs, ours = exported.predict(images), _cnnlab_probabilities(bundle, images)
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
    assert exported.predict_classes(images) == load(bundle).predict_classes(images)


SPEC_LAYERS = {
    "name": "odd_layers",
    "input_shape": [15, 13, 3],
    "layers": [
        {"type": "Conv2D", "filters": 6, "kernel_size": 3, "strides": 2, "padding": "same"},  # Keras 'same' + stride
        {"type": "PReLU", "alpha_initializer": "random_uniform"},
        {"type": "BedOfNailsUpSampling2D", "size": 2},
        {"type": "Conv2D", "filters": 8, "kernel_size": 4, "strides": 3, "padding": "same"},
        {"type": "Activation", "activation": "abs"},  # absolute rectification
        {"type": "BatchNormalization"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 4, "activation": "softmax"},
    ],
}


@pytest.mark.parametrize("standardize", [False, True])
def test_spec_layers_torch_lacks(tmp_path, standardize):
    bundle = make_bundle(tmp_path / "b", SPEC_LAYERS, standardize=standardize)
    result = export_onnx(bundle, tmp_path / "m.onnx")
    assert result.max_diff <= 1e-4
    images = check_images((15, 13, 3), 6, seed=3)
    np.testing.assert_allclose(load_onnx(tmp_path / "m.onnx").predict(images), _cnnlab_probabilities(bundle, images),
                               atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def lenet_onnx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lenet")
    bundle = make_bundle(folder / "b", "lenet5", classes=list("abcdefghij"), metrics={"val_accuracy": 0.5})
    export_onnx(bundle, folder / "lenet.onnx")
    return bundle, folder / "lenet.onnx"


@pytest.mark.parametrize("n", [1, 17])
def test_dynamic_batch(lenet_onnx, n):
    bundle, path = lenet_onnx
    images = check_images((32, 32, 1), n, seed=n)
    out = load_onnx(path).predict(images)
    assert out.shape == (n, 10)
    np.testing.assert_allclose(out, _cnnlab_probabilities(bundle, images), atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)


def test_metadata(lenet_onnx):
    import onnx

    from cnnlab import __version__

    _, path = lenet_onnx
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["cnnlab.classes"]) == list("abcdefghij")
    assert json.loads(meta["cnnlab.input_size"]) == [32, 32, 1]
    assert meta["cnnlab.version"] == __version__
    assert json.loads(meta["cnnlab.metrics"]) == {"val_accuracy": 0.5}
    graph_input = proto.graph.input[0]
    assert graph_input.name == "images"
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].dim_value  # dynamic batch
    assert [d.dim_value for d in dims[1:]] == [32, 32, 1]


def test_predict_files_same_top1(lenet_onnx, tmp_path):
    from PIL import Image

    from cnnlab.inference.evaluate import predict_files

    bundle, path = lenet_onnx
    files = []
    for i in range(4):
        rgb = check_images((40, 36, 3), 4, seed=i)[i]
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(rgb).save(files[-1])  # other size and colour: decoded + resized the same way
    a = predict_files(load(bundle), files, top_k=3)
    b = predict_files(load_onnx(path), files, top_k=3)
    assert [r["class"] for r in a] == [r["class"] for r in b]
    for ra, rb in zip(a, b):
        assert ra["probability"] == pytest.approx(rb["probability"], abs=1e-4)


def test_not_exportable_names_the_operator(tmp_path, svd_zoo_model):
    bundle = make_bundle(tmp_path / "b", svd_zoo_model)
    out = tmp_path / "m.onnx"
    with pytest.raises(CnnlabError, match=r"aten\.\w*svd"):
        export_onnx(bundle, out)
    assert not out.exists() and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".m.onnx*"))


def test_failed_check_writes_nothing(tmp_path, lenet_onnx, monkeypatch):
    import cnnlab.serve.export as export

    bundle, _ = lenet_onnx
    monkeypatch.setattr(export, "compare", lambda *a: 3e-3)
    out = tmp_path / "m.onnx"
    with pytest.raises(CnnlabError, match=r"disagrees.*0\.003 > 0\.0001.*nothing was written"):
        export_onnx(bundle, out)
    assert list(tmp_path.iterdir()) == []
