"""Keras model files (.keras and legacy .h5, written by real Keras 3: tools/keras_models.py) come over exactly.

The fixtures hold, per model, a fixed input batch and Keras's predictions on it;
the imported model (and the bundle ``cnnlab import-keras`` writes) must match to 1e-4.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.spec import summary
from cnnlab.spec.keras_model import read_keras_model

FIXTURES = Path(__file__).parent / "fixtures" / "keras_models"
DOC = json.loads((FIXTURES / "predictions.json").read_text())
MODELS = {m["name"]: m for m in DOC["models"]}
SEEDS = ("mnist_3conv", "fashion_practice_half", "cats_vs_dogs_12", "lenet_keras_16")


def _batch(entry) -> torch.Tensor:
    x = torch.tensor(entry["input"], dtype=torch.float32).reshape(2, *entry["input_shape"])
    return x.permute(0, 3, 1, 2)  # Keras NHWC -> NCHW


def _expected(entry) -> np.ndarray:
    return np.asarray(entry["output"], dtype=np.float64).reshape(entry["output_shape"])


def test_the_fixtures_cover_what_the_issue_lists():
    names = list(MODELS)
    assert set(SEEDS) <= set(names)
    assert sum(n.startswith(("sequential_", "functional_")) for n in names) >= 30
    assert MODELS["mnist_3conv"]["total_params"] == 93_962
    types = {t for m in DOC["models"] for _, t in m["layers"]}
    assert {"BatchNormalization", "Conv2DTranspose", "UpSampling2D", "Add", "Concatenate"} <= types
    padded = [json.loads(zipfile.ZipFile(FIXTURES / f"{n}.keras").read("config.json")) for n in names]
    strided_same = sum('"padding": "same"' in json.dumps(c) and '"strides": [2' in json.dumps(c) for c in padded)
    assert strided_same >= 5
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 3_000_000


@pytest.mark.parametrize("suffix", ["keras", "h5"])
@pytest.mark.parametrize("name", list(MODELS))
def test_imported_model_predicts_what_keras_predicts(name, suffix):
    entry = MODELS[name]
    imported = read_keras_model(FIXTURES / f"{name}.{suffix}")
    model = imported.build()
    with torch.no_grad():
        out = model(_batch(entry)).double().numpy()
    if out.ndim == 4:
        out = out.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(out, _expected(entry), atol=1e-4, rtol=0)
    counts = summary(model)
    assert (counts.total_params, counts.trainable_params, counts.non_trainable_params) == (
        entry["total_params"], entry["trainable_params"], entry["non_trainable_params"])
    assert imported.info["format"] == suffix and imported.info["keras_version"] == DOC["keras_version"]


def test_both_formats_give_the_same_weights():
    a = read_keras_model(FIXTURES / "functional_2.keras").tensors
    b = read_keras_model(FIXTURES / "functional_2.h5").tensors
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", ["mnist_3conv", "cats_vs_dogs_12", "functional_1"])
def test_import_keras_writes_a_bundle_predicting_what_keras_predicts(name, tmp_path, capsys):
    from cnnlab.inference import load

    out = tmp_path / "bundle"
    assert main(["import-keras", str(FIXTURES / f"{name}.keras"), "-o", str(out)]) == 0
    loaded = load(out)
    entry = MODELS[name]
    probabilities = loaded.predict_tensor(_batch(entry)).double().numpy()
    np.testing.assert_allclose(probabilities, _expected(entry), atol=1e-4, rtol=0)
    units = entry["output_shape"][-1]
    assert loaded.classes == [str(i) for i in range(2 if units == 1 else units)]
    assert loaded.meta["imported_from"]["file"] == f"{name}.keras"


@pytest.mark.parametrize("suffix", ["keras", "h5"])
def test_an_unsupported_layer_is_refused_naming_it_and_its_type(suffix, tmp_path, capsys):
    path = FIXTURES / f"refused_depthwise.{suffix}"
    with pytest.raises(CnnlabError) as error:
        read_keras_model(path)
    assert "'depthwise'" in str(error.value) and "DepthwiseConv2D" in str(error.value) and str(path) in str(error.value)
    assert main(["import-keras", str(path), "-o", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "DepthwiseConv2D" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_damaged_files_are_refused_naming_the_file(tmp_path):
    cut = tmp_path / "cut.keras"
    cut.write_bytes((FIXTURES / "mnist_3conv.keras").read_bytes()[:5000])
    bad_h5 = tmp_path / "bad.h5"
    bad_h5.write_bytes(b"not hdf5 at all")
    for path in (cut, bad_h5):
        with pytest.raises(CnnlabError) as error:
            read_keras_model(path)
        assert str(path) in str(error.value)
    # weights of a layer missing from the legacy file
    import h5py

    broken = tmp_path / "broken.h5"
    broken.write_bytes((FIXTURES / "lenet_keras_16.h5").read_bytes())
    with h5py.File(broken, "r+") as handle:
        del handle["model_weights/dense"]
    with pytest.raises(CnnlabError, match="no weights for layer 'dense'"):
        read_keras_model(broken)


def test_a_keras_file_works_as_pretrained_weights(tmp_path):
    from PIL import Image
    from safetensors.torch import load_file

    from cnnlab.train.api import fit

    rng = np.random.default_rng(0)
    for k, cls in enumerate(("cat", "dog", "bird")):
        (tmp_path / "d" / cls).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(np.clip(rng.normal(60 + 60 * k, 30, (12, 12, 3)), 0, 255).astype(np.uint8)).save(
                tmp_path / "d" / cls / f"{i}.png")
    history = fit(str(tmp_path / "d"), None, out=tmp_path / "run", epochs=1, batch_size=8, verbose=0,
                  **{"transfer.pretrained": str(FIXTURES / "cats_vs_dogs_12.h5"), "transfer.freeze": "features",
                     "optimizer.weight_decay": 0.1})
    source = read_keras_model(FIXTURES / "cats_vs_dogs_12.h5").tensors
    after = load_file(tmp_path / "run" / "weights.safetensors")
    for key in ("layers.conv2d.weight", "layers.conv2d_1.bias", "layers.dense.weight"):
        assert torch.equal(source[key], after[key]), key
    assert after["layers.dense_1.weight"].shape == (3, 128)  # Dense(1, sigmoid) became Dense(3, softmax)
    assert history.model.spec["layers"][-1]["activation"] == "softmax"
