"""CAM against the lecture notes' sum, Grad-CAM against the paper's formula, on every zoo family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.explain import cam, explain, gradcam, gradcam_pp
from cnnlab.spec import build

pytestmark = pytest.mark.filterwarnings("ignore:.*has no positive value")

GAP_DENSE = {
    "input_shape": [9, 7, 2],
    "layers": [
        {"type": "Conv2D", "filters": 5, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "Conv2D", "filters": 6, "kernel_size": 3, "activation": "relu"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ],
}


def _gap_dense(seed: int = 0):
    model = build(GAP_DENSE, seed=seed)
    with torch.no_grad():  # a positive bias keeps most of the ReLU map alive
        model.layers["conv2d_1"].bias.fill_(0.3)
    return model


def test_cam_is_the_notes_sum_by_hand():
    model = _gap_dense()
    x = torch.randn(4, 2, 9, 7, generator=torch.Generator().manual_seed(1))
    result = cam(model, x, target=[0, 1, 2, 1])
    assert result.layer == "conv2d_1" and result.method == "cam"
    with torch.no_grad():
        a = model.layers["conv2d_1"](model.layers["conv2d"](x))  # A_n, (N, 6, 7, 5)
        w = model.layers["dense"].weight  # (K, N): W_{n,k} = w[k, n]
        probs = model(x)
    assert a.shape == (4, 6, 7, 5)
    for i, k in enumerate([0, 1, 2, 1]):
        hand = np.zeros((7, 5))
        for n in range(6):  # M_k[x, y] = sum_n W_{n,k} A_n[x, y]
            hand += float(w[k, n]) * a[i, n].numpy().astype(np.float64)
        np.testing.assert_allclose(result.raw[i], hand, atol=1e-6, rtol=0)
        assert result.probabilities[i] == pytest.approx(float(probs[i, k]), abs=1e-6)
        positive = np.maximum(hand, 0)
        up = torch.nn.functional.interpolate(torch.tensor(positive)[None, None], size=(9, 7), mode="bilinear",
                                             align_corners=False)[0, 0].numpy()
        np.testing.assert_allclose(result.maps[i], up / up.max(), atol=1e-5)
    assert result.maps.shape == (4, 9, 7) and result.maps.dtype == np.float32
    assert result.targets == [0, 1, 2, 1]


def test_cam_and_gradcam_agree_on_gap_dense():
    model = _gap_dense(seed=3)
    x = torch.randn(6, 2, 9, 7, generator=torch.Generator().manual_seed(2))
    c, g = cam(model, x), gradcam(model, x)
    assert c.targets == g.targets == model(x).argmax(1).tolist()
    assert c.layer == g.layer
    for i in range(len(x)):
        # Grad-CAM = ReLU(M_k) / (h w) on this head: the same map up to scale.
        r = np.corrcoef(np.maximum(c.raw[i], 0).ravel(), g.raw[i].ravel())[0, 1]
        assert r > 0.999
        np.testing.assert_allclose(g.raw[i] * 35, np.maximum(c.raw[i], 0), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(c.maps[i], g.maps[i], atol=1e-5)


def test_cam_refuses_other_heads_naming_them():
    spec = {"input_shape": [8, 8, 1], "layers": [
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
        {"type": "Flatten"},
        {"type": "Dense", "units": 8, "activation": "relu"},
        {"type": "Dense", "units": 2, "activation": "softmax"}]}
    model = build(spec, seed=0)
    with pytest.raises(CnnlabError) as info:
        cam(model, torch.randn(1, 1, 8, 8))
    text = str(info.value)
    assert "Flatten -> Dense(8) -> Dense(2)" in text and "gradcam" in text
    gradcam(model, torch.randn(1, 1, 8, 8))  # Grad-CAM takes any head


def _direct_gradcam(model, x, layer_name, target, plus=False):
    """The paper's formula with autograd, independently of cnnlab.explain's code."""
    module = model.get_submodule(layer_name)
    store = {}
    handle = module.register_forward_hook(lambda m, i, o: store.__setitem__("A", o))
    model.eval()
    try:
        y = model(x)
    finally:
        handle.remove()
    a = store["A"]
    score = y[torch.arange(len(x)), target].sum()
    (grad,) = torch.autograd.grad(score, a)
    if plus:
        g2, g3 = grad ** 2, grad ** 3
        denom = 2 * g2 + a.sum((2, 3), keepdim=True) * g3
        coef = torch.where(grad != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), 0.0)
        weights = (coef * torch.relu(grad)).sum((2, 3), keepdim=True)
    else:
        weights = grad.mean((2, 3), keepdim=True)  # alpha_n^k = (1/Z) sum_ij dy^k/dA_n[i, j]
    return torch.relu((weights * a).sum(1)).detach().numpy()


FAMILIES = [
    ("lenet5", (32, 32, 1), {"output": "dense"}),
    ("mnist_3conv", (28, 28, 1), {"output_activation": "linear"}),
    pytest.param("alexnet", (64, 64, 3), {}, marks=pytest.mark.slow),
    pytest.param("vgg11", (32, 32, 3), {}, marks=pytest.mark.slow),
    pytest.param("googlenet", (32, 32, 3), {}, marks=pytest.mark.slow),
    ("resnet18", (32, 32, 3), {}),
    ("resnet20", (16, 16, 3), {}),
    pytest.param("densenet121", (32, 32, 3), {}, marks=pytest.mark.slow),
    ("cifar_speedrun", (16, 16, 3), {"widths": [8, 16, 16], "stem": 8}),
]


@pytest.mark.parametrize(("name", "shape", "options"), FAMILIES)
def test_gradcam_is_the_paper_formula_on_every_family(name, shape, options):
    from cnnlab.models import create

    torch.manual_seed(0)
    model = create(name, num_classes=5, input_shape=shape, **options)
    for module in model.modules():  # He init everywhere: GoogLeNet's own init (std 0.01) fades to ~1e-9
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight)
    x = torch.randn(3, shape[2], shape[0], shape[1], generator=torch.Generator().manual_seed(4))
    layer = gradcam(model, x[:1]).layer
    # Per image, the class whose map is largest: random weights leave many maps empty (all <= 0),
    # and a comparison of zeros with zeros would prove nothing.
    peaks = np.stack([_direct_gradcam(model, x, layer, torch.full((3,), k)).max((1, 2)) for k in range(5)])
    target = peaks.argmax(0).tolist()
    result = gradcam(model, x, target=target)
    assert result.layer == layer
    assert result.raw.ndim == 3 and result.maps.shape == (3, shape[0], shape[1])
    expected = _direct_gradcam(model, x, result.layer, torch.tensor(target))
    assert (expected.max((1, 2)) > 0).all()
    scale = max(float(np.abs(expected).max()), 1e-12)
    np.testing.assert_allclose(result.raw, expected, atol=1e-5 * scale, rtol=1e-4)
    plus = gradcam_pp(model, x, target=target, layer=result.layer)
    expected = _direct_gradcam(model, x, result.layer, torch.tensor(target), plus=True)
    scale = max(float(np.abs(expected).max()), 1e-12)
    np.testing.assert_allclose(plus.raw, expected, atol=1e-5 * scale, rtol=1e-4)
    assert np.isfinite(result.maps).all() and result.maps.min() >= 0 and result.maps.max() <= 1


def test_default_layers():
    from cnnlab.models import create

    cases = {("resnet20", (32, 32, 3)): "features", ("lenet5", (32, 32, 1)): "features.s4_act",
             ("mnist_3conv", (28, 28, 1)): "features.layers.conv2d_2", ("resnet18", (64, 64, 3)): "features",
             ("resnet18", (32, 32, 3)): "features.layer3"}
    for (name, shape), layer in cases.items():
        model = create(name, num_classes=3, input_shape=shape)
        x = torch.randn(1, shape[2], shape[0], shape[1])
        assert gradcam(model, x).layer == layer, name
    auto = build({"input_shape": [16, 16, 3], "layers": [
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "BatchNormalization"}, {"type": "Activation", "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 2}, {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 3, "activation": "softmax"}]}, seed=0)
    assert gradcam(auto, torch.randn(2, 3, 16, 16)).layer == "max_pooling2d"


def test_softmax_in_the_model_explains_the_logit():
    """A model ending in softmax is explained at the class score before the softmax."""
    from cnnlab.models import create

    torch.manual_seed(0)
    soft = create("mnist_3conv", num_classes=4)
    torch.manual_seed(0)
    linear = create("mnist_3conv", num_classes=4, output_activation="linear")
    linear.load_state_dict(soft.state_dict())
    x = torch.randn(2, 1, 28, 28)
    a, b = gradcam(soft, x, target=2), gradcam(linear, x, target=2)
    np.testing.assert_allclose(a.raw, b.raw, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(a.probabilities, soft(x)[:, 2].detach().numpy(), rtol=1e-5)


def test_batches_equal_single_images():
    model = _gap_dense(seed=5)
    x = torch.randn(5, 2, 9, 7)
    whole = explain(model, x, "gradcam", batch_size=2)
    for i in range(5):
        one = gradcam(model, x[i:i + 1])
        np.testing.assert_allclose(whole.raw[i], one.raw[0], rtol=1e-5, atol=1e-7)
        assert whole.targets[i] == one.targets[0]
