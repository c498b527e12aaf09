from __future__ import annotations

import math

import pytest
import torch

from cnnlab.data import Augment
from cnnlab.data.augment import affine_matrix
from cnnlab.errors import CnnlabError


@pytest.fixture
def image() -> torch.Tensor:
    # Distinct values everywhere so any misplaced pixel shows.
    return torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))


def one(n: int, value: float) -> torch.Tensor:
    return torch.full((n,), float(value), dtype=torch.float64)


@pytest.mark.parametrize("backend", ["kornia", "torch"])
def test_rotation_by_90_degrees_is_rot90_counter_clockwise(image, backend):
    out = Augment(backend=backend).apply(image, {"angle": one(2, 90)})
    assert torch.allclose(out, torch.rot90(image, 1, dims=(2, 3)), atol=1e-5)


@pytest.mark.parametrize("backend", ["kornia", "torch"])
def test_shift_by_4_pixels_moves_content_right_and_down(image, backend):
    aug = Augment(fill_mode="constant", backend=backend)
    right = aug.apply(image, {"tx": one(2, 4)})
    assert torch.allclose(right[..., 4:], image[..., :-4], atol=1e-5)
    assert right[..., :4].abs().max() < 1e-6  # constant fill, cval 0
    down = aug.apply(image, {"ty": one(2, 4)})
    assert torch.allclose(down[:, :, 4:], image[:, :, :-4], atol=1e-5)
    nearest = Augment().apply(image, {"tx": one(2, 4)})  # Keras's default fill: nearest edge pixel
    assert torch.allclose(nearest[..., :4], image[..., :1].expand(-1, -1, -1, 4), atol=1e-5)


def test_constant_fill_uses_cval_in_0_255_units(image):
    out = Augment(fill_mode="constant", cval=255).apply(image, {"tx": one(2, -3)})
    assert torch.allclose(out[..., -3:], torch.ones(2, 3, 12, 3), atol=1e-5)
    assert torch.allclose(out[..., :-3], image[..., 3:], atol=1e-5)


def test_flips_are_exact_and_per_sample(image):
    aug = Augment(horizontal_flip=True, vertical_flip=True)
    out = aug.apply(image, {"hflip": torch.tensor([True, False])})
    assert torch.equal(out[0], image[0].flip(-1)) and torch.equal(out[1], image[1])
    out = aug.apply(image, {"vflip": torch.tensor([False, True])})
    assert torch.equal(out[1], image[1].flip(-2)) and torch.equal(out[0], image[0])


def test_crop_with_padding_is_an_integer_shift_with_black_fill(image):
    out = Augment(crop_padding=4).apply(image, {"crop": torch.tensor([[4, -2], [0, 0]])})
    assert torch.equal(out[0, :, :-2, 4:], image[0, :, 2:, :-4])
    assert (out[0, :, :, :4] == 0).all() and (out[0, :, -2:] == 0).all()
    assert torch.equal(out[1], image[1])


def test_cutout_sets_one_square_per_image_to_its_mean_colour_clipped_at_the_border(image):
    out = Augment(cutout=4).apply(image, {"cutout": torch.tensor([[5, 6], [0, 11]])})
    mean = image.mean((2, 3))
    # image 0: rows and columns 3..6 (centre 5, 6 minus 4 // 2); image 1: rows 0..1, columns 9..11
    expected = image.clone()
    expected[0, :, 3:7, 4:8] = mean[0].view(3, 1, 1)
    expected[1, :, 0:2, 9:12] = mean[1].view(3, 1, 1)
    assert torch.equal(out, expected)
    p = Augment(cutout=4).sample(4000, 12, 20, torch.Generator().manual_seed(2))["cutout"]
    assert set(p[:, 0].unique().tolist()) == set(range(12)) and set(p[:, 1].unique().tolist()) == set(range(20))
    assert set(Augment(horizontal_flip=True).sample(3, 8, 8)) == {"hflip"}  # no cutout, no draw


def test_zoom_factor_two_samples_twice_as_far_from_the_centre():
    # Keras semantics: factor 2 zooms OUT. Output pixel at distance d from the centre
    # shows the input pixel at distance 2d; a 9x9 image keeps its centre pixel.
    x = torch.arange(81, dtype=torch.float32).view(1, 1, 9, 9)
    out = Augment(fill_mode="constant").apply(x, {"zx": one(1, 2), "zy": one(1, 2)})
    assert torch.allclose(out[0, 0, 4, 4], x[0, 0, 4, 4])
    assert torch.allclose(out[0, 0, 4, 5], x[0, 0, 4, 6]) and torch.allclose(out[0, 0, 2, 4], x[0, 0, 0, 4])


def test_shear_matrix_is_keras_s():
    a = math.radians(30)
    m = affine_matrix({"shear": one(1, 30)}, 1, 9, 9)[0]
    assert torch.allclose(m[:2, :2], torch.tensor([[1, -math.sin(a)], [0, math.cos(a)]], dtype=torch.float64))
    assert torch.allclose(m[:2, :2] @ torch.tensor([4.0, 4.0], dtype=torch.float64) + m[:2, 2],
                          torch.tensor([4.0, 4.0], dtype=torch.float64))  # the centre stays


def test_brightness_multiplies_and_clips(image):
    out = Augment(brightness_range=(0.5, 2)).apply(image, {"brightness": torch.tensor([0.5, 2.0], dtype=torch.float64)})
    assert torch.allclose(out[0], image[0] * 0.5) and torch.allclose(out[1], (image[1] * 2).clamp(max=1))


def test_kornia_and_plain_affine_grid_backends_agree(image):
    params = {"angle": torch.tensor([17.0, -40.0]), "tx": torch.tensor([1.5, -2.0]), "ty": torch.tensor([0.3, 2.0]),
              "shear": torch.tensor([5.0, -12.0]), "zx": torch.tensor([0.8, 1.1]), "zy": torch.tensor([1.2, 0.9])}
    a = Augment(backend="kornia", fill_mode="reflect").apply(image, params)
    b = Augment(backend="torch", fill_mode="reflect").apply(image, params)
    assert torch.allclose(a, b, atol=1e-5)


def test_random_parameters_stay_inside_the_ranges():
    aug = Augment(rotation_range=20, width_shift_range=0.1, height_shift_range=3, shear_range=15, zoom_range=0.2,
                  horizontal_flip=True, brightness_range=(0.7, 1.3), crop_padding=2)
    p = aug.sample(4000, 32, 40, torch.Generator().manual_seed(1))
    assert p["angle"].abs().max() <= 20 and p["angle"].abs().max() > 19  # fills the range
    assert p["tx"].abs().max() <= 4.0 and p["tx"].abs().max() > 3.9  # 0.1 x width 40
    assert p["ty"].abs().max() <= 3.0 and p["ty"].abs().max() > 2.9  # >= 1 means pixels
    assert p["shear"].abs().max() <= 15
    for key in ("zx", "zy"):
        assert 0.8 <= p[key].min() < 0.81 and 1.19 < p[key].max() <= 1.2
    assert 0.7 <= p["brightness"].min() and p["brightness"].max() <= 1.3
    assert set(p["crop"].unique().tolist()) == {-2, -1, 0, 1, 2}
    assert 0.45 < p["hflip"].float().mean() < 0.55 and "vflip" not in p  # unused transforms draw nothing
    assert set(Augment(horizontal_flip=True).sample(3, 8, 8)) == {"hflip"}


def test_same_generator_same_output_and_output_shape(image):
    aug = Augment.from_config({"rotation_range": 30, "zoom_range": [0.9, 1.1], "horizontal_flip": True})
    a = aug(image, torch.Generator().manual_seed(5))
    b = aug(image, torch.Generator().manual_seed(5))
    c = aug(image, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == image.shape


def test_from_config_errors_name_the_option():
    with pytest.raises(CnnlabError, match="unknown augmentation option.*featurewise_center.*preprocessing"):
        Augment.from_config({"featurewise_center": True})
    with pytest.raises(CnnlabError, match="zoom_range"):
        Augment.from_config({"zoom_range": [1.2, 0.8]})
    with pytest.raises(CnnlabError, match="fill_mode"):
        Augment.from_config({"fill_mode": "wrap"})
    with pytest.raises(CnnlabError, match="rotation_range"):
        Augment.from_config({"rotation_range": -5})
    assert Augment.from_config(Augment(rotation_range=5).config()).config() == Augment(rotation_range=5).config()


@pytest.mark.parametrize(("options", "message"), [
    ({"cval": "abc"}, r"^cval: must be a number from 0 to 255 \(Keras units\), got 'abc'"),
    ({"cval": 300}, r"^cval: must be a number from 0 to 255"),
    ({"horizontal_flip": "yes"}, r"^horizontal_flip: must be true or false, got 'yes'"),
    ({"fill_mode": ["nearest"]}, r"^fill_mode: unknown fill_mode \['nearest'\]"),
    ({"rotation_range": float("inf")}, r"^rotation_range: must be a number >= 0, got inf"),
    ({"zoom_range": [0.8, float("nan")]}, r"^zoom_range: must be a number or \[low, high\]"),
    ({"crop_padding": 10**9}, r"^crop_padding: must be a whole number of pixels from 0 to 256"),
    ({"rescale": float("nan")}, r"^rescale: must be a positive number"),
    ({"cutout": 2.5}, r"^cutout: must be a whole number of pixels from 0 to 256, got 2.5"),
])
def test_augment_values_are_checked_before_use(options, message):
    with pytest.raises(CnnlabError, match=message):
        Augment.from_config(options)


def test_augment_config_must_be_a_mapping():
    with pytest.raises(CnnlabError, match=r"^augment: must be a mapping of options, got \[1, 2\]"):
        Augment.from_config([1, 2])
    assert Augment.from_config({"horizontal_flip": 1}).horizontal_flip is True
