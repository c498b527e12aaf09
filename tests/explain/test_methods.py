"""Every method runs and leaves the model as it found it; edge cases: negative maps, in-place
ReLUs, train mode, binary and regression heads, targets by name, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.explain import METHODS, explain, gradcam
from cnnlab.spec import build

pytestmark = pytest.mark.filterwarnings("ignore:.*has no positive value")

SPEC = {
    "input_shape": [12, 12, 3],
    "layers": [
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same"},
        {"type": "BatchNormalization"},
        {"type": "Activation", "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "Conv2D", "filters": 6, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dropout", "rate": 0.5},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ],
}


def _model(seed: int = 0) -> nn.Module:
    model = build(SPEC, seed=seed)
    with torch.no_grad():
        model.layers["conv2d_1"].bias.fill_(0.2)
    return model


def _hooks(model: nn.Module) -> int:
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        total += len(getattr(m, "_backward_pre_hooks", {}))
    return total


def _x(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 12, 12, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_maps_in_range(method):
    model = _model()
    x = _x()
    result = explain(model, x, method, target=[0, 1, 2])
    assert result.method == method
    assert result.maps.shape == (3, 12, 12) and result.maps.dtype == np.float32
    assert np.isfinite(result.maps).all() and result.maps.min() >= 0
    assert all(result.maps[i].max() == pytest.approx(1.0) for i in range(3) if not result.empty[i])
    assert result.targets == [0, 1, 2]
    np.testing.assert_allclose(result.probabilities, model.eval()(x)[[0, 1, 2], [0, 1, 2]].detach().numpy(),
                               rtol=1e-5)
    expected_raw = (6, 6) if method in ("cam", "gradcam", "gradcam++") else (12, 12)
    assert result.raw.shape == (3, *expected_raw)
    assert result.layer == ("input" if method in ("saliency", "integrated-gradients", "occlusion") else "conv2d_1")


def test_saliency_is_the_input_gradient():
    model = _model()
    x = _x(2)
    result = explain(model, x, "saliency", target=1)
    xi = x.clone().requires_grad_(True)
    model.eval()
    layers = model.layers
    dense = layers["dense"]  # holds the softmax: the explained score is its pre-activation
    features = layers["conv2d_1"](layers["max_pooling2d"](layers["activation"](
        layers["batch_normalization"](layers["conv2d"](xi)))))
    z = nn.functional.linear(features.mean((2, 3)), dense.weight, dense.bias)
    (grad,) = torch.autograd.grad(z[:, 1].sum(), xi)
    np.testing.assert_allclose(result.raw, grad.abs().sum(1).numpy(), rtol=1e-4, atol=1e-7)


def test_hooks_leave_no_trace_after_100_calls():
    model = _model()
    x = _x(2, seed=1)
    model.eval()
    with torch.no_grad():
        before = model(x).clone()
    params = {k: v.clone() for k, v in model.state_dict().items()}
    for i in range(100):
        explain(model, x, ("gradcam", "cam", "gradcam++")[i % 3])
    for method in METHODS:  # the Captum ones register their own hooks: once each
        explain(model, x, method, **({"n_steps": 4} if method == "integrated-gradients" else {}))
    assert _hooks(model) == 0
    assert all(p.grad is None for p in model.parameters())  # explanations never touch .grad
    with torch.no_grad():
        assert torch.equal(model(x), before)
    for key, value in model.state_dict().items():
        assert torch.equal(value, params[key]), key


def test_hooks_removed_when_a_call_fails():
    model = _model()
    with pytest.raises(CnnlabError):
        explain(model, _x(1), "gradcam", target=7)
    with pytest.raises(CnnlabError):
        explain(model, _x(1), "cam", layer="conv2d")  # conv2d does not feed the pooling directly
    assert _hooks(model) == 0


def test_train_mode_is_explained_in_eval_and_restored():
    model = _model()
    model.train()
    model.layers["conv2d"].eval()  # a mixed state is restored as it was
    x = _x(2)
    stats = model.layers["batch_normalization"].running_mean.clone()
    a = gradcam(model, x)
    assert model.training and not model.layers["conv2d"].training and model.layers["dense"].training
    assert torch.equal(model.layers["batch_normalization"].running_mean, stats)  # no BN update
    b = gradcam(model.eval(), x)
    np.testing.assert_array_equal(a.raw, b.raw)  # dropout off, batch-norm on moving statistics


class _Inplace(nn.Module):
    """A conv net with in-place ReLUs, one right after the explained layer."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(4, 5, 3, padding=1))
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        a = self.features(x)
        a = self.act(a)  # overwrites `features`'s output in place
        return self.fc(self.pool(a).flatten(1))


def test_inplace_relu_after_the_layer():
    torch.manual_seed(0)
    model = _Inplace()
    x = torch.randn(2, 3, 8, 8)
    result = gradcam(model, x, target=1, layer="features")
    # Reference with out-of-place ReLUs and the same weights.
    a = model.features[2](torch.relu(model.features[0](x)))
    a.retain_grad()
    y = model.fc(torch.relu(a).mean((2, 3)))
    y[:, 1].sum().backward()
    expected = torch.relu((a.grad.mean((2, 3), keepdim=True) * a).sum(1)).detach().numpy()
    np.testing.assert_allclose(result.raw, expected, rtol=1e-5, atol=1e-7)
    assert model.act.inplace and model.features[1].inplace  # put back
    assert _hooks(model) == 0
    for method in ("guided-gradcam", "saliency"):
        explain(model, x, method, layer="features")
    assert _hooks(model) == 0


def test_negative_map_is_zeros_with_a_warning_never_nan():
    model = _model()
    with torch.no_grad():  # class 0 weights all negative on non-negative (ReLU) maps: M_0 < 0 everywhere
        model.layers["dense"].weight[0] = -1.0
        model.layers["conv2d_1"].bias.fill_(1.0)
    x = _x(2)
    with pytest.warns(UserWarning, match="no positive value"):
        result = explain(model, x, "gradcam", target=0)
    assert result.empty == [True, True]
    assert (result.maps == 0).all() and np.isfinite(result.maps).all()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        c = explain(model, x, "cam", target=0)
    assert (c.raw < 0).all() and (c.maps == 0).all() and c.empty == [True, True]


def test_binary_and_regression_heads():
    spec = {"input_shape": [8, 8, 1], "layers": [
        {"type": "Conv2D", "filters": 3, "kernel_size": 3, "activation": "relu", "padding": "same"},
        {"type": "GlobalAveragePooling2D"}, {"type": "Dense", "units": 1, "activation": "sigmoid"}]}
    binary = build(spec, seed=0)
    x = torch.randn(4, 1, 8, 8)
    p = binary.eval()(x)[:, 0].detach()
    result = explain(binary, x, "cam")
    assert result.targets == (p > 0.5).long().tolist()
    expected = torch.where(p > 0.5, p, 1 - p).numpy()
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-5)
    one, zero = explain(binary, x, "cam", target=1), explain(binary, x, "cam", target=0)
    np.testing.assert_allclose(one.raw, -zero.raw, rtol=1e-6)  # class 0 scores -z

    spec["layers"][-1] = {"type": "Dense", "units": 1}
    regression = build(spec, seed=0)
    result = explain(regression, x, "gradcam")
    assert result.probabilities is None and result.targets == [0, 0, 0, 0]
    np.testing.assert_allclose(result.scores, regression(x)[:, 0].detach().numpy(), rtol=1e-5)


def test_targets_by_name_and_errors():
    model = _model()
    model.classes = ["circle", "square", "cross"]
    x = _x(2)
    assert explain(model, x, target="cross").targets == [2, 2]
    assert explain(model, x, target=["square", 0]).targets == [1, 0]
    with pytest.raises(CnnlabError, match="no class 'crosss'.*did you mean cross"):
        explain(model, x, target="crosss")
    with pytest.raises(CnnlabError, match="out of range"):
        explain(model, x, target=3)
    with pytest.raises(CnnlabError, match="unknown method"):
        explain(model, x, method="lime")
    with pytest.raises(CnnlabError) as info:
        explain(model, x, layer="conv9")
    assert "no layer 'conv9'" in str(info.value) and "conv2d, " in str(info.value) and "conv2d_1" in str(info.value)
    with pytest.raises(CnnlabError, match="not a feature map"):
        explain(model, x, layer="dense")
    with pytest.raises(CnnlabError, match="float tensor"):
        explain(model, np.zeros((12, 12, 3), np.uint8))


def test_model_without_conv_layers():
    mlp = build({"input_shape": [4, 4, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 2}]}, seed=0)
    with pytest.raises(CnnlabError, match="no convolutional layer"):
        gradcam(mlp, torch.randn(1, 1, 4, 4))
    assert explain(mlp, torch.randn(1, 1, 4, 4), "saliency").maps.shape == (1, 4, 4)


def test_float32_whatever_the_model_dtype():
    model = _model().to(torch.bfloat16)
    result = gradcam(model, _x(2))
    assert result.maps.dtype == np.float32 and np.isfinite(result.maps).all()
    assert next(model.parameters()).dtype == torch.bfloat16  # the model itself is untouched


def test_other_threads_see_the_model_unchanged_during_an_explanation():
    """A server predicts from other threads while one explains: those predictions stay
    probabilities, and their passes do not leak into the explanation."""
    import threading

    model = _model()
    x = _x(2)
    with torch.no_grad():
        expected = model.eval()(x)
    seen: dict[str, torch.Tensor] = {}

    def predict_elsewhere(module, args, out):
        if "other" not in seen and torch.is_grad_enabled():  # during the explained pass itself
            seen["other"] = torch.zeros(0)
            worker = threading.Thread(target=lambda: seen.__setitem__("other", model(x[[1, 0]]).detach()))
            worker.start()
            worker.join()

    handle = model.layers["dense"].register_forward_hook(predict_elsewhere)  # after our hooks ran
    try:
        result = gradcam(model, x, target=[0, 1])
    finally:
        handle.remove()
    torch.testing.assert_close(seen["other"], expected[[1, 0]])  # softmax output, not logits
    torch.testing.assert_close(seen["other"].sum(1), torch.ones(2))
    model_alone = gradcam(model, x, target=[0, 1])
    np.testing.assert_array_equal(result.raw, model_alone.raw)
