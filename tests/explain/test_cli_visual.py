"""The commands (explain, features, filters), the PNG helpers, and the shapes set's masks."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.explain import (
    explain,
    feature_grid,
    feature_maps,
    filter_grid,
    filters,
    overlay,
    save_explanation_png,
    to_png_bytes,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*has no positive value")

SPEC = {
    "name": "tiny",
    "input_shape": [16, 16, 3],
    "layers": [
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "Conv2D", "filters": 6, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ],
}
CLASSES = ["circle", "square", "cross"]


@pytest.fixture
def run(tmp_path):
    from cnnlab.inference.bundle import save_bundle
    from cnnlab.spec import build

    model = build(SPEC, seed=0)
    with torch.no_grad():
        model.layers["conv2d_1"].bias.fill_(0.2)
    folder = tmp_path / "run"
    folder.mkdir()
    save_bundle(folder, model, {
        "architecture": {"kind": "spec", "spec": model.spec}, "task": "classification", "classes": CLASSES,
        "input_shape": [16, 16, 3], "output": {"activation": "softmax", "in_model": True, "units": 3},
        "preprocessing": {"image_size": [16, 16], "channels": 3, "resize": "bilinear-stretch", "alpha": "white",
                          "scale": 1 / 255, "mean": None, "std": None}})
    return folder


@pytest.fixture
def pictures(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(16, 16), (24, 20)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_loaded_bundle_takes_files_arrays_and_tensors(run, pictures):
    from cnnlab.inference import load

    model = load(run)
    by_file = explain(model, [str(p) for p in pictures])
    x = model.prepare([str(p) for p in pictures])
    by_tensor = explain(model, x)
    np.testing.assert_array_equal(by_file.raw, by_tensor.raw)
    assert by_file.maps.shape == (2, 16, 16)
    assert by_file.targets == model.predict([str(p) for p in pictures]).argmax(1).tolist()
    np.testing.assert_allclose(by_file.probabilities, model.predict([str(p) for p in pictures]).max(1), rtol=1e-5)
    assert by_file.classes == CLASSES and by_file.target_names == [CLASSES[t] for t in by_file.targets]
    array = np.asarray(Image.open(pictures[0]))
    np.testing.assert_allclose(explain(model, array).raw[0], by_file.raw[0], rtol=1e-5, atol=1e-8)
    assert explain(model, str(pictures[0]), target="cross").targets == [2]


def test_explain_command_writes_one_png_per_image(run, pictures, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["explain", str(run), *map(str, pictures), "-o", str(out), "--method", "cam"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(" -> " in line and "cam of " in line for line in lines)
    assert "at conv2d_1" in lines[0]
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["img0-cam.png", "img1-cam.png"]
    assert Image.open(pngs[0]).format == "PNG"
    assert main(["explain", str(run), str(pictures[0]), "-o", str(out), "--class", "square",
                 "--method", "gradcam++", "--layer", "conv2d"]) == 0
    assert "gradcam++ of square at conv2d" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "expected"), [
    (["--layer", "conv7"], "no layer 'conv7'"),
    (["--class", "triangle"], "no class 'triangle'"),
    (["--method", "lime"], "unknown method 'lime'"),
    (["--layer", "dense"], "not a feature map"),
])
def test_explain_command_bad_input_is_one_line(run, pictures, tmp_path, capsys, args, expected):
    code = main(["explain", str(run), str(pictures[0]), "-o", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err and "Traceback" not in err
    if "layer" in expected:
        assert "conv2d, max_pooling2d, conv2d_1" in err  # the valid names, as `cnnlab summary` prints them
    if "class" in expected:
        assert "circle, square, cross" in err


def test_bad_image_and_model_without_conv_layers(run, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    assert main(["explain", str(run), str(bad), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.png" in err

    from cnnlab.inference.bundle import save_bundle
    from cnnlab.spec import build

    mlp = build({"input_shape": [8, 8, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]}, seed=0)
    folder = tmp_path / "mlp"
    folder.mkdir()
    save_bundle(folder, mlp, {"architecture": {"kind": "spec", "spec": mlp.spec}, "task": "classification",
                              "classes": ["a", "b"], "input_shape": [8, 8, 1],
                              "output": {"activation": "linear", "in_model": False, "units": 2},
                              "preprocessing": {"image_size": [8, 8], "channels": 1, "scale": 1 / 255}})
    img = tmp_path / "g.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    for argv in (["explain", str(folder), str(img), "-o", str(tmp_path / "o")], ["filters", str(folder), "-o",
                                                                                 str(tmp_path / "f.png")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no convolutional layer" in err


def test_features_and_filters_commands(run, pictures, tmp_path, capsys):
    grid = tmp_path / "features.png"
    assert main(["features", str(run), str(pictures[0]), "--layer", "conv2d", "-o", str(grid)]) == 0
    assert "4 feature maps of conv2d (16x16)" in capsys.readouterr().out
    assert Image.open(grid).format == "PNG"
    grid = tmp_path / "filters.png"
    assert main(["filters", str(run), "-o", str(grid)]) == 0
    assert "4 filters 3x3 x 3 channel(s) of conv2d" in capsys.readouterr().out
    assert main(["filters", str(run), "--layer", "dense", "-o", str(grid)]) == 2
    err = capsys.readouterr().err
    assert "layer 'dense' is not convolutional" in err and "conv2d, conv2d_1" in err
    assert main(["filters", str(run), "--layer", "nope", "-o", str(grid)]) == 2
    assert "the model has no layer 'nope'" in capsys.readouterr().err


def test_feature_maps_and_filters_are_the_layer_values(run, pictures):
    from cnnlab.inference import load

    model = load(run)
    x = model.prepare([str(pictures[0])])
    maps = feature_maps(model, [str(pictures[0])], "conv2d_1")
    with torch.no_grad():
        layers = model.module.layers
        expected = layers["conv2d_1"](layers["max_pooling2d"](layers["conv2d"](x)))[0].numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-6)
    name, weights = filters(model)
    assert name == "conv2d"
    np.testing.assert_array_equal(weights, layers["conv2d"].weight.detach().numpy())
    assert filters(model, "conv2d_1")[1].shape == (6, 4, 3, 3)
    for data in (feature_grid(maps), filter_grid(weights), filter_grid(filters(model, "conv2d_1")[1])):
        assert Image.open(io.BytesIO(data)).format == "PNG"


def test_overlay_and_png_bytes():
    image = np.full((4, 6), 100, np.uint8)  # grey
    heat = np.zeros((2, 3), np.float32)
    heat[0, 0] = 1.0
    out = overlay(image, heat, alpha=0.0)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8 and (out == 100).all()
    out = overlay(image, np.ones((4, 6)), alpha=1.0, colormap="gray")
    assert (out == 255).all()
    from matplotlib import colormaps

    jet = np.rint(np.array(colormaps["jet"](0.0)[:3]) * 255)
    out = overlay(np.zeros((3, 3, 3), np.uint8), np.zeros((3, 3)), alpha=1.0)
    assert (out == jet).all()
    floats = overlay(np.full((3, 3, 3), 0.5), np.zeros((3, 3)), alpha=0.5)
    np.testing.assert_allclose(floats[0, 0], np.rint(0.5 * 127.5 + 0.5 * jet), atol=1)
    decoded = np.asarray(Image.open(io.BytesIO(to_png_bytes(out))))
    np.testing.assert_array_equal(decoded, out)
    data = save_explanation_png(np.zeros((8, 8, 3), np.uint8), np.random.rand(4, 4), title="x")
    assert Image.open(io.BytesIO(data)).format == "PNG"


def test_shapes_masks_leave_the_images_unchanged():
    from cnnlab.data.shapes import generate_shapes

    images, labels = generate_shapes(24, seed=5, stream=1)
    same, same_labels, masks = generate_shapes(24, seed=5, stream=1, masks=True)
    np.testing.assert_array_equal(images, same)
    np.testing.assert_array_equal(labels, same_labels)
    assert masks.shape == (24, 32, 32) and masks.dtype == bool
    area = masks.mean((1, 2))
    assert (area > 0.02).all() and (area < 0.6).all()
    # The object's pixels stand out from the background (colour offset >= 60 in mean level).
    for image, mask in zip(images.astype(float), masks):
        inside, outside = image[mask].mean(0), image[~mask].mean(0)
        assert abs((inside - outside).mean()) > 25


def test_zoo_bundle_explained_with_summary_names(tmp_path):
    from cnnlab.inference import load
    from cnnlab.inference.bundle import save_bundle
    from cnnlab.models import create

    torch.manual_seed(0)
    zoo = create("resnet20", num_classes=3, input_shape=(16, 16, 3))
    save_bundle(tmp_path, zoo, {"architecture": {"kind": "zoo", "config": zoo.config}, "task": "classification",
                                "classes": CLASSES, "input_shape": [16, 16, 3],
                                "output": {"activation": "softmax", "in_model": False, "units": 3},
                                "preprocessing": {"image_size": [16, 16], "channels": 3, "scale": 1 / 255}})
    model = load(tmp_path)
    images = np.random.default_rng(1).integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    result = explain(model, images, "cam")
    assert result.layer == "features" and result.maps.shape == (2, 16, 16)
    np.testing.assert_allclose(result.probabilities, model.predict(images).max(1), rtol=1e-5)
    inner = explain(model, images, "gradcam", layer="features.layer2.0.conv1")  # a `cnnlab summary` row
    assert inner.layer == "features.layer2.0.conv1" and inner.raw.shape[1:] == (8, 8)
