"""match_template against cv2.matchTemplate(TM_CCOEFF_NORMED) and exact crop positions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.ops import match_template
from cnnlab.ops.lab import lab_picture


def _photo(colour: bool) -> np.ndarray:
    """An 8-bit 'photo' (0..255): smooth sky with a little noise, flat shapes, stripes."""
    picture = lab_picture(96)
    if not colour:
        picture = picture @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.round(picture * 255.0).astype(np.uint8)


@pytest.mark.parametrize("colour", [False, True], ids=["gray", "colour"])
@pytest.mark.parametrize(("top", "left", "height", "width"), [(10, 20, 24, 24), (40, 5, 16, 30), (0, 0, 8, 8), (70, 60, 26, 36)])
def test_finds_the_crop_and_equals_cv2(colour, top, left, height, width):
    photo = _photo(colour)
    crop = photo[top : top + height, left : left + width].copy()
    scores, (x, y, score) = match_template(photo, crop)
    assert (x, y) == (left, top)
    assert score == pytest.approx(1.0, abs=1e-9)
    expected = _cv2_scores(photo, crop)
    assert scores.shape == expected.shape == (96 - height + 1, 96 - width + 1)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    for row, col in [(0, 1), (expected.shape[0] // 2, expected.shape[1] // 3), (expected.shape[0] - 1, 0)]:
        assert scores[row, col] == pytest.approx(_brute_force(photo, crop, row, col), abs=1e-9)


def _cv2_scores(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """OpenCV's TM_CCOEFF_NORMED, fed inputs shifted by one global offset.

    The score is invariant to that shift, but OpenCV accumulates window sums in
    float32: on low-contrast windows of raw 0..255 values it is off by up to
    ~1e-3 (we checked against the float64 brute force below); centred inputs
    bring it within 2e-5 of the exact value, which is what we compare with.
    """
    offset = np.float32(image.mean())
    return cv2.matchTemplate(image.astype(np.float32) - offset, template.astype(np.float32) - offset, cv2.TM_CCOEFF_NORMED)


def _brute_force(image: np.ndarray, template: np.ndarray, row: int, col: int) -> float:
    """The TM_CCOEFF_NORMED formula at one position, in float64."""
    window = image[row : row + template.shape[0], col : col + template.shape[1]].astype(np.float64)
    t = template.astype(np.float64)
    w = window - window.mean(axis=(0, 1))
    t = t - t.mean(axis=(0, 1))
    return float((w * t).sum() / np.sqrt((w**2).sum() * (t**2).sum()))


def test_random_float_images_equal_cv2():
    rng = np.random.default_rng(7)
    image = rng.random((60, 70)).astype(np.float32)
    template = rng.random((9, 13)).astype(np.float32)
    scores, (x, y, score) = match_template(image, template)
    expected = cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED)
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    _, best, _, (cx, cy) = cv2.minMaxLoc(expected)
    assert (x, y) == (cx, cy) and score == pytest.approx(best, abs=1e-4)


def test_brightness_and_contrast_do_not_matter():
    photo = _photo(False).astype(np.float64)
    crop = photo[30:50, 40:64] * 0.5 + 17.0
    _, (x, y, score) = match_template(photo, crop)
    assert (x, y) == (40, 30) and score == pytest.approx(1.0)


def test_flat_windows_score_zero_like_opencv():
    image = np.zeros((20, 20), dtype=np.float32)
    image[10:, 10:] = np.random.default_rng(0).random((10, 10))
    template = image[12:17, 12:17].copy()
    scores, _ = match_template(image, template)
    assert scores[0, 0] == 0.0  # an all-zero window
    np.testing.assert_allclose(scores, cv2.matchTemplate(image, template, cv2.TM_CCOEFF_NORMED), atol=1e-4)


def test_torch_in_torch_out():
    photo = torch.from_numpy(_photo(False).astype(np.float32))
    scores, (x, y, _) = match_template(photo, photo[5:25, 7:30])
    assert isinstance(scores, torch.Tensor) and scores.shape == (77, 74)
    assert (x, y) == (7, 5)


def test_errors():
    photo = _photo(False)
    with pytest.raises(CnnlabError, match="template: is 100x10, larger than the 96x96 image"):
        match_template(photo, np.ones((100, 10)))
    with pytest.raises(CnnlabError, match="template: has 3 channel"):
        match_template(photo, _photo(True)[:10, :10])
    with pytest.raises(CnnlabError, match="flat"):
        match_template(photo, np.full((8, 8), 3.0))
    with pytest.raises(CnnlabError, match="image: must be a gray"):
        match_template(np.zeros((2, 3, 4, 5)), np.ones((2, 2)))
