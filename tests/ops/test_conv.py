"""correlate2d / convolve2d against OpenCV and SciPy, the notes' worked example, 1-D, errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.signal
import torch

from cnnlab.errors import CnnlabError
from cnnlab.ops import convolve1d, convolve2d, correlate1d, correlate2d

CV_BORDER = {
    "zeros": cv2.BORDER_CONSTANT,
    "reflect": cv2.BORDER_REFLECT_101,
    "symmetric": cv2.BORDER_REFLECT,
    "replicate": cv2.BORDER_REPLICATE,
    "wrap": cv2.BORDER_WRAP,
}
NP_BORDER = {"zeros": "constant", "reflect": "reflect", "symmetric": "symmetric", "replicate": "edge", "wrap": "wrap"}
SCIPY_BOUNDARY = {"zeros": "fill", "wrap": "wrap", "symmetric": "symm"}
KERNEL_SHAPES = [(3, 3), (5, 5), (4, 2), (1, 3), (2, 5)]


def _image(colour: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((13, 17, 3) if colour else (13, 17))


def _kernel(shape: tuple[int, int], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _dilate(kernel: np.ndarray, d: int) -> np.ndarray:
    """The kernel with d - 1 zeros between taps: what dilation means."""
    out = np.zeros(((kernel.shape[0] - 1) * d + 1, (kernel.shape[1] - 1) * d + 1))
    out[::d, ::d] = kernel
    return out


def _cv_correlate_padded(image: np.ndarray, kernel: np.ndarray, pads: tuple[int, int, int, int], border: str) -> np.ndarray:
    """Reference correlation with explicit padding: copyMakeBorder, then filter2D's fully-inside part."""
    top, bottom, left, right = pads
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, CV_BORDER[border], value=0)
    dense = cv2.filter2D(padded, cv2.CV_64F, kernel, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    rows, cols = padded.shape[0] - kernel.shape[0] + 1, padded.shape[1] - kernel.shape[1] + 1
    return dense[:rows, :cols]


def _scipy_convolve(image: np.ndarray, kernel: np.ndarray, mode: str, boundary: str) -> np.ndarray:
    if image.ndim == 2:
        return scipy.signal.convolve2d(image, kernel, mode=mode, boundary=boundary)
    return np.stack([scipy.signal.convolve2d(image[..., c], kernel, mode=mode, boundary=boundary) for c in range(image.shape[2])], axis=2)


# --- the notes' worked example (seed 003) ---------------------------------------

NOTES_INPUT = np.array(
    [
        [0.0, 5.0, 0.0, 0.0, 9.0, 4.0, 0.0],
        [1.0, 6.0, 0.0, 0.0, 8.0, 3.0, 0.0],
        [2.0, 7.0, 0.0, 0.0, 7.0, 2.0, 0.0],
        [3.0, 8.0, 0.0, 0.0, 6.0, 1.0, 0.0],
        [4.0, 9.0, 0.0, 0.0, 5.0, 0.0, 0.0],
    ]
)
NOTES_KERNEL = np.array([[1.0, -2.0, 3.0], [4.0, -5.0, 6.0], [-7.0, 8.0, -9.0]])
NOTES_OUTPUT = np.array(  # cv2.filter2D(Entrada, -1, kernel) as printed in seed 003
    [
        [-16.0, 5.0, -16.0, 6.0, 9.0, -14.0, 4.0],
        [-21.0, 6.0, -20.0, 12.0, 10.0, -15.0, 14.0],
        [-22.0, 5.0, -22.0, 12.0, 9.0, -14.0, 16.0],
        [-23.0, 4.0, -24.0, 12.0, 8.0, -13.0, 18.0],
        [-8.0, 1.0, -12.0, -6.0, 5.0, -10.0, -12.0],
    ]
)


def test_notes_5x7_example_gives_the_printed_numbers():
    np.testing.assert_array_equal(correlate2d(NOTES_INPUT, NOTES_KERNEL), NOTES_OUTPUT)


def test_notes_red_box_is_6():
    # 0*1 + 5*(-2) + 0*3 + 1*4 + 6*(-5) + 0*6 + 2*(-7) + 7*8 + 0*(-9) = 6
    assert correlate2d(NOTES_INPUT, NOTES_KERNEL, padding="valid")[0, 0] == 6.0


def test_notes_padding_and_stride_sizes():
    # Eq. (75): one pixel per side (two rows, two columns) keeps 5x7; Eq. (77): stride 2 gives 3x4.
    assert correlate2d(NOTES_INPUT, NOTES_KERNEL, padding=1, border="zeros").shape == (5, 7)
    assert correlate2d(NOTES_INPUT, NOTES_KERNEL, padding=1, border="zeros", stride=2).shape == (3, 4)


# --- correlate2d == cv2.filter2D ----------------------------------------------------


@pytest.mark.parametrize("colour", [False, True], ids=["gray", "colour"])
@pytest.mark.parametrize("border", ["zeros", "reflect", "symmetric", "replicate"])
@pytest.mark.parametrize("kshape", KERNEL_SHAPES)
def test_correlate_same_equals_filter2d(colour, border, kshape):
    image, kernel = _image(colour), _kernel(kshape)
    expected = cv2.filter2D(image, cv2.CV_64F, kernel, borderType=CV_BORDER[border])
    np.testing.assert_allclose(correlate2d(image, kernel, "same", border), expected, atol=1e-5)


@pytest.mark.parametrize("colour", [False, True], ids=["gray", "colour"])
@pytest.mark.parametrize("border", list(CV_BORDER))
@pytest.mark.parametrize("padding", [0, 1, 3, (2, 0, 1, 3), "full", "valid"])
def test_correlate_explicit_padding_equals_filter2d(colour, border, padding):
    image, kernel = _image(colour), _kernel((3, 4))
    pads = {
        "valid": (0, 0, 0, 0),
        "full": (2, 2, 3, 3),
    }.get(padding if isinstance(padding, str) else "", padding if isinstance(padding, tuple) else (padding,) * 4)
    expected = _cv_correlate_padded(image, kernel, pads, border)
    np.testing.assert_allclose(correlate2d(image, kernel, padding, border), expected, atol=1e-5)


@pytest.mark.parametrize("colour", [False, True], ids=["gray", "colour"])
@pytest.mark.parametrize("border", ["zeros", "reflect", "replicate"])
@pytest.mark.parametrize("stride", [1, 2, 3, (2, 3)])
@pytest.mark.parametrize("dilation", [1, 2, (2, 1)])
def test_correlate_stride_and_dilation_equal_slice_of_dilated_reference(colour, border, stride, dilation):
    image, kernel = _image(colour), _kernel((3, 3))
    d = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    dilated = np.zeros(((3 - 1) * d[0] + 1, (3 - 1) * d[1] + 1))
    dilated[:: d[0], :: d[1]] = kernel
    dense = cv2.filter2D(image, cv2.CV_64F, dilated, borderType=CV_BORDER[border])
    s = stride if isinstance(stride, tuple) else (stride, stride)
    got = correlate2d(image, kernel, "same", border, stride=stride, dilation=dilation)
    np.testing.assert_allclose(got, dense[:: s[0], :: s[1]], atol=1e-5)


def test_float32_image_matches_filter2d_in_float32():
    image = _image(True).astype(np.float32)
    kernel = _kernel((5, 5)).astype(np.float32)
    got = correlate2d(image, kernel)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, cv2.filter2D(image, -1, kernel), atol=1e-5)


def test_uint8_image_is_filtered_in_float32():
    image = (np.random.default_rng(3).random((9, 8)) * 255).astype(np.uint8)
    got = correlate2d(image, np.ones((3, 3)) / 9.0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, cv2.filter2D(image.astype(np.float64), -1, np.ones((3, 3)) / 9.0), atol=1e-4)


# --- convolve2d == scipy.signal.convolve2d ------------------------------------------


@pytest.mark.parametrize("colour", [False, True], ids=["gray", "colour"])
@pytest.mark.parametrize("border", list(SCIPY_BOUNDARY))
@pytest.mark.parametrize("mode", ["same", "full", "valid"])
@pytest.mark.parametrize("kshape", KERNEL_SHAPES)
def test_convolve_equals_scipy(colour, border, mode, kshape):
    image, kernel = _image(colour), _kernel(kshape)
    expected = _scipy_convolve(image, kernel, mode, SCIPY_BOUNDARY[border])
    np.testing.assert_allclose(convolve2d(image, kernel, mode, border), expected, atol=1e-5)


@pytest.mark.parametrize("border", list(NP_BORDER))
@pytest.mark.parametrize("padding", [1, (0, 2, 3, 1)])
def test_convolve_explicit_padding_equals_scipy_on_padded_image(border, padding):
    image, kernel = _image(False), _kernel((3, 2))
    top, bottom, left, right = padding if isinstance(padding, tuple) else (padding,) * 4
    padded = np.pad(image, ((top, bottom), (left, right)), mode=NP_BORDER[border])
    expected = scipy.signal.convolve2d(padded, kernel, mode="valid")
    np.testing.assert_allclose(convolve2d(image, kernel, padding, border), expected, atol=1e-5)


@pytest.mark.parametrize("colour", [False, True], ids=["gray", "colour"])
@pytest.mark.parametrize("border", list(SCIPY_BOUNDARY))
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_convolve_stride_and_dilation_equal_slice_of_dilated_reference(colour, border, stride, dilation):
    image, kernel = _image(colour), _kernel((3, 3))
    dense = _scipy_convolve(image, _dilate(kernel, dilation), "same", SCIPY_BOUNDARY[border])
    got = convolve2d(image, kernel, "same", border, stride=stride, dilation=dilation)
    np.testing.assert_allclose(got, dense[::stride, ::stride], atol=1e-5)


def test_convolution_flips_the_kernel_and_correlation_does_not():
    image = _image(False)
    kernel = _kernel((3, 3))
    np.testing.assert_allclose(convolve2d(image, kernel), correlate2d(image, kernel[::-1, ::-1]), atol=1e-12)
    sobel = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    ramp = np.tile(np.arange(8.0), (6, 1))  # brightness grows to the right
    assert (correlate2d(ramp, sobel, "valid") > 0).all()
    assert (convolve2d(ramp, sobel, "valid") < 0).all()


def test_border_wider_than_image_still_matches_numpy_pad():
    image = _image(False)[:3, :4]
    kernel = _kernel((3, 3))
    for border in ("reflect", "symmetric", "wrap", "replicate"):
        padded = np.pad(image, 6, mode=NP_BORDER[border])
        expected = scipy.signal.correlate2d(padded, kernel, mode="valid")
        np.testing.assert_allclose(correlate2d(image, kernel, 6, border), expected, atol=1e-12)


# --- torch in, torch out ---------------------------------------------------------


def test_torch_in_gives_torch_out_with_gradients():
    image = torch.rand(10, 12, 3, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(3, 3, dtype=torch.float64)
    out = correlate2d(image, kernel, stride=2)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == (5, 6, 3)
    expected = correlate2d(image.detach().numpy(), kernel.numpy(), stride=2)
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-12)
    out.sum().backward()
    assert image.grad is not None and image.grad.shape == image.shape
    # 'valid', stride 1: d(sum out)/d x[i, j] is the sum of the kernel taps K[m, n] that ever
    # multiply x[i, j], i.e. those with 0 <= i - m < out_h and 0 <= j - n < out_w (worked by hand).
    x = torch.rand(5, 6, dtype=torch.float64, requires_grad=True)
    k = torch.arange(1.0, 7.0, dtype=torch.float64).reshape(2, 3)
    correlate2d(x, k, padding="valid").sum().backward()
    expected = np.zeros((5, 6))
    for i in range(5):
        for j in range(6):
            expected[i, j] = sum(float(k[m, n]) for m in range(2) for n in range(3)
                                 if 0 <= i - m < 4 and 0 <= j - n < 4)
    np.testing.assert_allclose(x.grad.numpy(), expected, atol=1e-12)
    assert expected[0, 0] == 1 and expected[2, 2] == 21 and expected[4, 5] == 6


def test_torch_float32_stays_float32():
    out = convolve2d(torch.rand(7, 7), np.ones((3, 3)))
    assert out.dtype == torch.float32


# --- 1-D -----------------------------------------------------------------------------


def test_1d_against_numpy():
    rng = np.random.default_rng(5)
    x, k = rng.random(20), rng.standard_normal(4)
    np.testing.assert_allclose(convolve1d(x, k, "full", "zeros"), np.convolve(x, k, "full"), atol=1e-12)
    np.testing.assert_allclose(convolve1d(x, k, "same", "zeros"), scipy.signal.convolve(x, k, "same"), atol=1e-12)
    np.testing.assert_allclose(correlate1d(x, k, "valid"), np.correlate(x, k, "valid"), atol=1e-12)
    dilated = np.zeros(7)
    dilated[::2] = k
    np.testing.assert_allclose(
        correlate1d(x, k, (1, 2), "zeros", stride=3, dilation=2),
        np.correlate(np.pad(x, (1, 2)), dilated, "valid")[::3],
        atol=1e-12,
    )


def test_1d_torch_and_errors():
    out = correlate1d(torch.arange(5.0), torch.tensor([1.0, 1.0]), padding="valid")
    assert out.tolist() == [1.0, 3.0, 5.0, 7.0]
    with pytest.raises(CnnlabError, match="1-D signal"):
        correlate1d(np.zeros((3, 3)), [1, 2])
    with pytest.raises(CnnlabError, match="1-D array"):
        correlate1d(np.zeros(5), [[1, 2]])


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"stride": 0}, "stride: must be a positive integer"),
        ({"stride": (1, 0)}, "stride"),
        ({"dilation": 0}, "dilation: must be a positive integer"),
        ({"stride": True}, "stride"),
        ({"padding": -1}, "padding"),
        ({"padding": (1, 2, 3)}, "padding"),
        ({"padding": "sam"}, "unknown padding 'sam'"),
        ({"border": "reflekt"}, "did you mean reflect"),
    ],
)
def test_bad_arguments_raise_cnnlab_error(kwargs, pattern):
    with pytest.raises(CnnlabError, match=pattern):
        correlate2d(np.zeros((5, 5)), np.ones((3, 3)), **kwargs)


def test_bad_shapes_raise_cnnlab_error():
    with pytest.raises(CnnlabError, match=r"gray \(H, W\) or colour"):
        correlate2d(np.zeros((1, 5, 5, 3)), np.ones((3, 3)))
    with pytest.raises(CnnlabError, match="non-empty 2-D"):
        correlate2d(np.zeros((5, 5)), np.ones((3, 3, 3)))
    with pytest.raises(CnnlabError, match="NaN"):
        correlate2d(np.zeros((5, 5)), np.full((3, 3), np.nan))
    with pytest.raises(CnnlabError, match="height: .*output is empty"):
        correlate2d(np.zeros((2, 9)), np.ones((3, 3)), padding="valid")
