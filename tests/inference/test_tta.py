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
    # A "model" on 1x2 images that weighs the left pixel 4x the right: logit(b) = 8 l + 2 r - 4, logit(a) = 0.
    # (l, r) = (1, 0): 4 plain, -2 mirrored -> mean 1 > 0: b either way. (0, 1): -2 plain (a, wrong),
    # mean 1 with its mirror (b, right). No image sits on a tie: argmax never decides by index.
    images = np.asarray([[255, 255], [255, 0], [0, 255], [0, 0]], dtype=np.uint8).reshape(4, 1, 2, 1)
    targets = np.asarray([1, 1, 1, 0])
    imageset = ImageSet(data=images, targets=targets, classes=["a", "b"], task="classification", name="toy")

    class LeftWeighted(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = 8 * x[:, 0, 0, 0] + 2 * x[:, 0, 0, 1] - 4
            return torch.stack([torch.zeros_like(z), z], 1)

    pre = {"image_size": [1, 2], "channels": 1, "scale": 1 / 255, "mean": None, "std": None}
    model = LoadedModel(LeftWeighted(), {"preprocessing": pre, "output": {"activation": "linear", "in_model": False,
                                                                         "units": 2}, "classes": ["a", "b"]}, None)
    plain, flipped = evaluate_model(model, imageset, batch_size=16), evaluate_model(model, imageset, tta="flip")
    assert plain["accuracy"] == pytest.approx(0.75) and plain["confusion_matrix"] == [[1, 0], [1, 2]]
    assert flipped["accuracy"] == pytest.approx(1.0) and flipped["confusion_matrix"] == [[1, 0], [0, 3]]
    assert flipped["tta"] == "flip" and plain["tta"] == "none"
    with pytest.raises(CnnlabError, match="tta|test-time"):
        evaluate_model(model, imageset, tta="mirror")
