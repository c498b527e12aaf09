"""LoadedModel.prepare: uint8 arrays already at the model's size skip decoding, with the same pixels."""

import numpy as np
import pytest
import torch
from torch import nn

from cnnlab.data.loader import prepare_images
from cnnlab.inference import LoadedModel


def general_path(images: np.ndarray, pre: dict) -> torch.Tensor:
    """What prepare() did before the fast path: one image per item, a PNG round trip each."""
    one = images.ndim == 2 or (images.ndim == 3 and images.shape[-1] in (1, 3, 4))
    return prepare_images([images] if one else list(images), pre)


@pytest.mark.parametrize(("h", "w", "c", "shape"), [
    (28, 28, 1, (4, 28, 28)), (28, 28, 1, (28, 28)), (28, 28, 1, (28, 28, 1)), (28, 28, 1, (3, 28, 28, 1)),
    (32, 32, 3, (32, 32, 3)), (32, 32, 3, (5, 32, 32, 3)),
    (6, 4, 1, (4, 6, 4)),  # read as one 4-channel 4x6 image, resized: not the fast path
    (8, 8, 3, (2, 8, 8, 4)),  # RGBA onto white: not the fast path
    (8, 8, 3, (8, 8)),  # grey to RGB: not the fast path
])
def test_prepare_equals_the_decoding_path(h, w, c, shape):
    pre = {"image_size": [h, w], "channels": c, "resize": "bilinear-stretch", "alpha": "white",
           "scale": 1 / 255, "mean": [0.4] * c, "std": [0.2] * c}
    model = LoadedModel(nn.Identity(), {"preprocessing": pre, "output": {}}, None)
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    fast, ref = model.prepare(images), general_path(images, pre)
    assert fast.shape == ref.shape
    assert torch.equal(fast, ref)


def test_fast_path_taken_only_for_matching_arrays():
    pre = {"image_size": [6, 5], "channels": 1, "scale": 1 / 255}
    model = LoadedModel(nn.Identity(), {"preprocessing": pre, "output": {}}, None)
    assert model._prepare_array(np.zeros((7, 6, 5), np.uint8)).shape == (7, 1, 6, 5)
    assert model._prepare_array(np.zeros((7, 6, 5), np.float32)) is None
    pre = {"image_size": [6, 4], "channels": 1, "scale": 1 / 255}
    model = LoadedModel(nn.Identity(), {"preprocessing": pre, "output": {}}, None)
    assert model._prepare_array(np.zeros((5, 6, 4), np.uint8)) is None  # one 5x6 RGBA image, as prepare() reads it
