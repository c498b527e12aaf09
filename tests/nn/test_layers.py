"""cnnlab.nn layers against independent references (torch functional ops, autograd adjoints)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import cnnlab.nn as cnn
from cnnlab.nn.init import fans
from cnnlab.nn.padding import output_length, same_padding, transpose_output_length


@pytest.mark.parametrize(("size", "kernel", "stride", "expected"), [(5, 3, 1, (1, 1)), (6, 2, 1, (0, 1)), (6, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (5, 4, 3, (1, 1)), (5, 4, 2, (1, 2)), (2, 5, 1, (2, 2))])
def test_same_padding_puts_the_extra_row_at_the_bottom(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected
    assert output_length(size, kernel, stride, "same") == -(-size // stride)


def test_output_length_formula():
    # O = floor((I - D(K-1) - 1) / S) + 1
    assert output_length(28, 3) == 26
    assert output_length(13, 3, 2, dilation=1) == 6
    assert output_length(10, 3, 1, dilation=3) == 4
    assert transpose_output_length(4, 3, 2, "valid") == 9 and transpose_output_length(4, 1, 3, "valid") == 12
    assert transpose_output_length(4, 3, 2, "same") == 8


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("size", [(7, 6), (8, 5)])
def test_conv2d_same_equals_explicit_asymmetric_padding(stride, size):
    torch.manual_seed(0)
    conv = cnn.Conv2d(2, 3, (4, 3), stride, "same")
    x = torch.randn(1, 2, *size)
    pads = []
    for s, k in reversed(list(zip(size, (4, 3)))):
        pads.extend(same_padding(s, k, stride))
    expected = F.conv2d(F.pad(x, pads), conv.weight, conv.bias, stride)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape[-2:] == tuple(-(-s // stride) for s in size)


def test_conv1d_causal_looks_only_backwards():
    conv = cnn.Conv1d(1, 1, 3, padding="causal", dilation=2, bias=False)
    x = torch.zeros(1, 1, 10)
    x[..., 5] = 1.0
    y = conv(x)
    assert y.shape == (1, 1, 10)
    assert torch.count_nonzero(y[..., :5]) == 0  # nothing before the impulse


@pytest.mark.parametrize(("stride", "kernel", "size"), [(2, 3, 5), (2, 4, 4), (3, 2, 5), (1, 3, 6)])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv_transpose_is_the_adjoint_of_the_keras_convolution(stride, kernel, size, padding):
    # TensorFlow's conv2d_transpose is the gradient of conv2d w.r.t. its input.
    torch.manual_seed(0)
    deconv = cnn.ConvTranspose2d(3, 2, kernel, stride, padding, bias=False)
    y = torch.randn(1, 3, size, size)
    out = deconv(y)
    length = transpose_output_length(size, kernel, stride, padding)
    assert out.shape == (1, 2, length, length)
    conv = cnn.Conv2d(2, 3, kernel, stride, padding, bias=False)
    with torch.no_grad():
        conv.weight.copy_(deconv.weight)  # (in=3, out=2, k, k) is the forward conv's (out, in, k, k)
    x = torch.zeros(1, 2, length, length, requires_grad=True)
    forward = conv(x)
    assert forward.shape[-2:] == y.shape[-2:]
    (grad,) = torch.autograd.grad(forward, x, y)
    torch.testing.assert_close(out, grad)


def test_max_pool_same_never_picks_padding_and_avg_counts_real_pixels():
    x = -torch.ones(1, 1, 3, 3) * torch.arange(1, 10.0).reshape(1, 1, 3, 3)
    assert torch.equal(cnn.MaxPool2d(2, 2, "same")(x), torch.tensor([[[[-1.0, -3.0], [-7.0, -9.0]]]]))
    ones = torch.ones(1, 1, 5, 5)
    torch.testing.assert_close(cnn.AvgPool2d(2, 2, "same")(ones), torch.ones(1, 1, 3, 3))
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    y = cnn.AvgPool2d(2, 2, "same")(x)
    assert y[0, 0, 2, 2] == 24.0 and y[0, 0, 0, 2] == (4.0 + 9.0) / 2


def test_pool_strides_default_to_pool_size_and_1d_pools():
    assert cnn.MaxPool2d(3)(torch.randn(1, 1, 9, 9)).shape == (1, 1, 3, 3)
    x = torch.arange(6.0).reshape(1, 1, 6)
    assert torch.equal(cnn.MaxPool1d(2)(x), torch.tensor([[[1.0, 3.0, 5.0]]]))
    assert torch.equal(cnn.AvgPool1d(4, 4, "same")(x), torch.tensor([[[1.0, 4.0]]]))  # pads (1, 1): (0+1+2)/3, (3+4+5)/3


def test_global_pools():
    x = torch.arange(8.0).reshape(1, 2, 2, 2)
    assert torch.equal(cnn.GlobalAvgPool()(x), torch.tensor([[1.5, 5.5]]))
    assert cnn.GlobalMaxPool(keepdims=True)(x).shape == (1, 2, 1, 1)


def test_bed_of_nails_puts_values_on_a_grid_of_zeros():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = cnn.BedOfNailsUpsample(2)(x)
    expected = torch.tensor([[[[1.0, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]]])
    assert torch.equal(y, expected)
    assert cnn.BedOfNailsUpsample((2, 3))(x).shape == (1, 1, 4, 6)


def test_upsampling_nearest_repeats_and_bilinear_is_half_pixel():
    x = torch.tensor([[[[1.0, 2.0]]]])
    assert torch.equal(cnn.UpSampling2d(2)(x), torch.tensor([[[[1.0, 1, 2, 2], [1, 1, 2, 2]]]]))
    y = cnn.UpSampling2d((1, 2), "bilinear")(x)
    torch.testing.assert_close(y, torch.tensor([[[[1.0, 1.25, 1.75, 2.0]]]]))
    assert torch.equal(cnn.UpSampling1d(3)(torch.tensor([[[1.0, 2.0]]])), torch.tensor([[[1.0, 1, 1, 2, 2, 2]]]))


def test_flatten_and_reshape_use_kerass_channels_last_order():
    x = torch.arange(12.0).reshape(1, 3, 2, 2)  # (N, C, H, W)
    keras_order = x.permute(0, 2, 3, 1).reshape(1, -1)
    assert torch.equal(cnn.Flatten()(x), keras_order)
    back = cnn.Reshape((2, 2, 3))(keras_order)  # Keras (H, W, C) -> ours (N, C, H, W)
    assert torch.equal(back, x)


def test_dense_acts_on_the_channels_of_an_image():
    dense = cnn.Dense(3, 4)
    x = torch.randn(2, 3, 5, 5)
    expected = torch.einsum("nchw,oc->nohw", x, dense.weight) + dense.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(dense(x), expected)


def test_batchnorm_keras_defaults_and_frozen_inference():
    bn = cnn.BatchNorm(2)
    assert bn.eps == 1e-3 and bn.momentum == pytest.approx(0.01)
    x = torch.randn(16, 2, 3, 3) * 3 + 1
    bn.train()
    bn(x)
    torch.testing.assert_close(bn.running_mean, 0.01 * x.mean((0, 2, 3)))
    bn.trainable = False
    before = bn.running_mean.clone()
    y = bn(x)
    assert torch.equal(bn.running_mean, before)
    torch.testing.assert_close(y, (x - before.view(1, -1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1) + 1e-3))
    assert cnn.BatchNorm(4)(torch.randn(5, 4)).shape == (5, 4)


def test_activations():
    x = torch.tensor([[-2.0, 0.5]])
    assert torch.equal(cnn.activation("abs")(x), torch.tensor([[2.0, 0.5]]))
    torch.testing.assert_close(cnn.activation("leaky_relu", alpha=0.1)(x), torch.tensor([[-0.2, 0.5]]))
    torch.testing.assert_close(cnn.activation("leaky_relu")(x), torch.tensor([[-0.4, 0.5]]))  # Keras 3 default 0.2
    prelu = cnn.activation("prelu", channels=3, rank=3)
    assert prelu.weight.shape == (3, 1, 1) and prelu.weight[0, 0, 0] == 0.25
    img = -torch.ones(1, 3, 2, 2)
    assert torch.equal(prelu(img), torch.full((1, 3, 2, 2), -0.25))
    softmax = cnn.activation("softmax")(torch.randn(2, 5, 3, 3))
    torch.testing.assert_close(softmax.sum(1), torch.ones(2, 3, 3))
    relu = cnn.KerasReLU(max_value=6.0, negative_slope=0.5, threshold=1.0)
    assert torch.equal(relu(torch.tensor([0.0, 3.0, 9.0])), torch.tensor([-0.5, 3.0, 6.0]))
    with pytest.raises(ValueError, match="unknown activation"):
        cnn.activation("rleu")


def test_concatenate_maps_keras_axes():
    assert cnn.keras_axis_to_torch(-1, 4) == 1 and cnn.keras_axis_to_torch(1, 4) == 2 and cnn.keras_axis_to_torch(-1, 2) == 1
    a, b = torch.randn(1, 2, 3, 3), torch.randn(1, 2, 3, 3)
    assert cnn.Concatenate()(a, b).shape == (1, 4, 3, 3)
    assert cnn.Concatenate(axis=1)(a, b).shape == (1, 2, 6, 3)


def test_padding_and_cropping():
    x = torch.ones(1, 1, 2, 2)
    y = cnn.ZeroPadding2d(((1, 0), (0, 2)))(x)
    assert y.shape == (1, 1, 3, 4) and y[0, 0, 0].sum() == 0 and y[0, 0, 1:, 2:].sum() == 0
    z = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(cnn.Cropping2d(((1, 0), (0, 2)))(z), z[..., 1:, :2])
    assert cnn.Cropping1d((1, 2))(torch.randn(1, 2, 6)).shape == (1, 2, 3)


def test_fans_match_kerass_for_torch_layouts():
    assert fans((16, 3, 5, 5)) == (3 * 25, 16 * 25)  # conv (out, in, kH, kW)
    assert fans((10, 128)) == (128, 10)  # Linear (out, in)
    assert fans((7,)) == (7, 7)
    w = torch.empty(64, 32, 3, 3)
    cnn.initialize(w, "he_uniform", generator=torch.Generator().manual_seed(0))
    bound = (6 / (32 * 9)) ** 0.5  # He uniform: U(-b, b), b = sqrt(6 / fan_in), variance b^2 / 3 = 2 / fan_in
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert abs(float(w.mean())) < 0.01 * bound  # 18,432 draws: the mean's std is 0.004 b
    assert float(w.var()) == pytest.approx(2 / (32 * 9), rel=0.03)  # the variance's std is 0.7 %
