"""The classic kernels against OpenCV and the notes, and kernel parsing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cnnlab.errors import CnnlabError
from cnnlab.ops import correlate2d
from cnnlab.ops.kernels import (
    box,
    diagonal_45,
    diagonal_135,
    emboss,
    gaussian,
    gaussian_121,
    identity,
    kernel_from_text,
    laplacian,
    parse_kernel,
    sharpen,
    sobel_x,
    sobel_y,
)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).random((12, 15))


def test_box_normalised_and_all_ones():
    np.testing.assert_array_equal(box(3, normalize=False), np.ones((3, 3)))
    assert box(5).shape == (5, 5) and box(5).sum() == pytest.approx(1.0)
    assert np.all(box(5) == 1 / 25)


def test_box_equals_cv2_blur(image):
    np.testing.assert_allclose(correlate2d(image, box(5)), cv2.blur(image, (5, 5)), atol=1e-12)


@pytest.mark.parametrize(("size", "sigma"), [(3, 0.8), (5, 1.0), (7, 2.5), (9, 1.7), (11, 1.5)])
def test_gaussian_equals_cv2(size, sigma):
    g = cv2.getGaussianKernel(size, sigma)
    np.testing.assert_allclose(gaussian(size, sigma), g @ g.T, atol=1e-12)


def test_gaussian_default_sigma_is_opencvs_formula():
    # sigma = 0.3((size - 1)/2 - 1) + 0.8
    np.testing.assert_allclose(gaussian(9), gaussian(9, 1.7), atol=1e-15)
    np.testing.assert_allclose(gaussian(5), gaussian(5, 1.1), atol=1e-15)


def test_gaussian_121_is_the_notes_kernel():
    np.testing.assert_array_equal(gaussian_121(), [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    np.testing.assert_array_equal(gaussian_121(normalize=True) * 16, gaussian_121())


def test_sobel_equals_cv2_sobel(image):
    np.testing.assert_allclose(correlate2d(image, sobel_x()), cv2.Sobel(image, cv2.CV_64F, 1, 0, ksize=3), atol=1e-12)
    np.testing.assert_allclose(correlate2d(image, sobel_y()), cv2.Sobel(image, cv2.CV_64F, 0, 1, ksize=3), atol=1e-12)


def test_seed_003_edge_kernels():
    np.testing.assert_array_equal(sobel_y(), [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])  # filtro_horizontal
    np.testing.assert_array_equal(sobel_x(), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])  # filtro_vertical
    np.testing.assert_array_equal(diagonal_45(), [[-1, -2, 0], [-2, 0, 2], [0, 2, 1]])  # filtro_diagonal
    np.testing.assert_array_equal(diagonal_135(), [[0, -2, -1], [2, 0, -2], [1, 2, 0]])


def test_diagonal_kernels_respond_to_their_diagonal():
    rows, cols = np.mgrid[0:9, 0:9]
    towards_bottom_right = (rows + cols).astype(float)
    towards_bottom_left = (rows - cols).astype(float)
    assert (correlate2d(towards_bottom_right, diagonal_45(), "valid") > 0).all()
    assert np.allclose(correlate2d(towards_bottom_left, diagonal_45(), "valid"), 0)
    assert (correlate2d(towards_bottom_left, diagonal_135(), "valid") > 0).all()


def test_laplacian_and_friends(image):
    np.testing.assert_allclose(correlate2d(image, laplacian(4)), cv2.Laplacian(image, cv2.CV_64F, ksize=1), atol=1e-12)
    np.testing.assert_array_equal(laplacian(8), [[1, 1, 1], [1, -8, 1], [1, 1, 1]])
    np.testing.assert_array_equal(sharpen(), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    np.testing.assert_array_equal(emboss(), [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    np.testing.assert_array_equal(correlate2d(image, identity(5)), image)
    with pytest.raises(CnnlabError, match="4 or 8"):
        laplacian(6)


def test_kernel_from_text():
    np.testing.assert_array_equal(kernel_from_text("1 2 1; 2 4 2; 1 2 1"), gaussian_121())
    np.testing.assert_array_equal(kernel_from_text("0,-1,0\n-1,5,-1\n0,-1,0"), sharpen())
    np.testing.assert_allclose(kernel_from_text("1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9"), box(3))
    assert kernel_from_text("1 -2.5e-1").shape == (1, 2)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [("", "is empty"), ("1 2; 3", r"different lengths \(2, 1\)"), ("1 x 1", "row 1: 'x' is not a number"), ("1/0", "not a number")],
)
def test_kernel_from_text_errors(text, pattern):
    with pytest.raises(CnnlabError, match=pattern):
        kernel_from_text(text)


@pytest.mark.parametrize(
    ("spec", "expected", "name"),
    [
        ("sobel-x", sobel_x(), "sobel-x"),
        ("SOBEL_Y", sobel_y(), "sobel-y"),
        ("gaussian:5:1.0", gaussian(5, 1.0), "gaussian:5:1.0"),
        ("gaussian:7", gaussian(7), "gaussian:7"),
        ("box:5", box(5), "box:5"),
        ("box-ones", np.ones((3, 3)), "box-ones"),
        ("gaussian-121", gaussian_121(), "gaussian-121"),
        ("laplacian-8", laplacian(8), "laplacian-8"),
        ("0 -1 0; -1 5 -1; 0 -1 0", sharpen(), "custom 3x3"),
    ],
)
def test_parse_kernel(spec, expected, name):
    weights, label = parse_kernel(spec)
    np.testing.assert_allclose(weights, expected)
    assert label == name


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("sobelx", "unknown kernel 'sobelx'.*did you mean sobel-x"),
        ("laplace", "did you mean laplacian"),
        ("nothing-like-it", "valid names: box, box-ones"),
        ("gaussian:4", "kernel 'gaussian:4': size must be odd.*use size 3 or 5"),
        ("gaussian:5:zero", "sigma 'zero' is not a number"),
        ("gaussian:5:-1", "sigma must be a positive"),
        ("box:0", "positive integer"),
        ("sharpen:3", "takes no ':' arguments"),
    ],
)
def test_parse_kernel_errors(spec, pattern):
    with pytest.raises(CnnlabError, match=pattern):
        parse_kernel(spec)
