"""Test-time augmentation: flip and flip+translate means, and evaluate_model(tta=...)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.data.imageset import ImageSet
from cnnlab.errors import CnnlabError
from cnnlab.inference import LoadedModel
from cnnlab.inference.evaluate import evaluate_model, predict_tta


def lopsided() -> nn.Module:
    """A net whose output changes under a mirror or a shift (no symmetric pooling)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 4 * 5, 4)).eval()


def reflect_shift(x: np.ndarray, d: int) -> np.ndarray:
    """numpy reference: content moved right and down by d, reflected at the border."""
    p = abs(d)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="reflect")
    h, w = x.shape[2:]
    return padded[:, :, p - d:p - d + h, p - d:p - d + w]


@torch.no_grad()
def test_flip_is_the_mean_of_the_two_mirrored_predictions():
    model = lopsided()
    x = torch.randn(5, 2, 6, 7)
    expected = (model(x) + model(torch.from_numpy(x.numpy()[..., ::-1].copy()))) / 2
    assert torch.allclose(predict_tta(model, x, "flip"), expected, atol=1e-6)
    assert not torch.allclose(model(x), expected, atol=1e-3)
    assert torch.equal(predict_tta(model, x, "none"), model(x))


@torch.no_grad()
def test_flip_translate_weights_the_views_as_airbench():
    model = lopsided()
    x = torch.randn(3, 2, 6, 7)

    def flip_mean(v: np.ndarray) -> torch.Tensor:
        return (model(torch.from_numpy(v.copy())) + model(torch.from_numpy(v[..., ::-1].copy()))) / 2

    xs = x.numpy()
    expected = flip_mean(xs) / 2 + flip_mean(reflect_shift(xs, 1)) / 4 + flip_mean(reflect_shift(xs, -1)) / 4
    assert torch.allclose(predict_tta(model, x, "flip_translate"), expected, atol=1e-6)
    # the shift itself: pixel (1, 1) of the moved image is pixel (0, 0) of the original
    assert reflect_shift(xs, 1)[0, 0, 1, 1] == xs[0, 0, 0, 0]


def test_unknown_mode_is_a_user_error():
    with pytest.raises(CnnlabError, match="test-time augmentation"):
        predict_tta(nn.Identity(), torch.zeros(1, 1, 2, 2), "rotate")


def test_evaluate_model_with_flip_counts_the_mirrored_mean():
    # A "model" that looks at the left half only: class 1 when it is brighter than the right half.
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 4, 6, 1), dtype=np.uint8)
    targets = rng.integers(0, 2, 40)
    imageset = ImageSet(data=images, targets=targets, classes=["a", "b"], task="classification", name="toy")

    class LeftHalf(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            d = x[..., :3].mean((1, 2, 3)) - x[..., 3:].mean((1, 2, 3))
            return torch.stack([-d, d], 1) * 10

    pre = {"image_size": [4, 6], "channels": 1, "scale": 1 / 255, "mean": None, "std": None}
    model = LoadedModel(LeftHalf(), {"preprocessing": pre, "output": {"activation": "linear", "in_model": False,
                                                                     "units": 2}, "classes": ["a", "b"]}, None)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    probs = model.predict_tensor(x)
    mean = (probs + model.predict_tensor(x.flip(-1))) / 2
    plain, flipped = evaluate_model(model, imageset, batch_size=16), evaluate_model(model, imageset, tta="flip")
    assert plain["accuracy"] == pytest.approx(float((probs.argmax(1).numpy() == targets).mean()))
    assert flipped["accuracy"] == pytest.approx(float((mean.argmax(1).numpy() == targets).mean()))
    assert flipped["tta"] == "flip" and plain["tta"] == "none"
    with pytest.raises(CnnlabError, match="tta|test-time"):
        evaluate_model(model, imageset, tta="mirror")
