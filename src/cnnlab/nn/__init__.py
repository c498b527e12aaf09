"""cnnlab.nn: the layers the spec language needs, with Keras's meaning, in PyTorch layout.

Tensors are channels-first (N, C, H, W) / (N, C, L) / (N, F). Each layer
subclasses the torch layer it extends where there is one, so state dicts look
normal (Conv ``.weight`` is (out, in/groups, kH, kW)). Layers marked
``_cnnlab_atomic`` are shown as one row by :func:`cnnlab.spec.summary`.
"""

from cnnlab.nn.activations import ACTIVATIONS, AbsoluteRectification, KerasReLU, PReLU, Softmax, activation
from cnnlab.nn.conv import Conv1d, Conv2d, ConvTranspose2d
from cnnlab.nn.core import Add, Average, BatchNorm, Concatenate, Dense, Maximum, Minimum, Multiply, Subtract, keras_axis_to_torch
from cnnlab.nn.init import INITIALIZERS, initialize
from cnnlab.nn.padding import output_length, same_padding, transpose_output_length
from cnnlab.nn.params import ParamCount, count_params
from cnnlab.nn.pooling import AvgPool1d, AvgPool2d, GlobalAvgPool, GlobalMaxPool, MaxPool1d, MaxPool2d
from cnnlab.nn.regularizers import Regularizer
from cnnlab.nn.resample import BedOfNailsUpsample, UpSampling1d, UpSampling2d
from cnnlab.nn.reshape import Cropping1d, Cropping2d, Flatten, Reshape, ZeroPadding1d, ZeroPadding2d, to_channels_first, to_channels_last

__all__ = [
    # convolutions (Keras 'same' padding: extra row / column at the bottom / right)
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    # pooling (Keras 'same': max never picks padding, average counts real pixels only)
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "GlobalAvgPool",
    "GlobalMaxPool",
    # resampling
    "UpSampling1d",
    "UpSampling2d",
    "BedOfNailsUpsample",
    # shape (channels-last order, as Keras)
    "Flatten",
    "Reshape",
    "ZeroPadding1d",
    "ZeroPadding2d",
    "Cropping1d",
    "Cropping2d",
    "to_channels_first",
    "to_channels_last",
    # core
    "Dense",
    "BatchNorm",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "keras_axis_to_torch",
    # activations
    "ACTIVATIONS",
    "activation",
    "AbsoluteRectification",
    "PReLU",
    "KerasReLU",
    "Softmax",
    # initialisers, regularisers, counts, arithmetic
    "INITIALIZERS",
    "initialize",
    "Regularizer",
    "ParamCount",
    "count_params",
    "output_length",
    "same_padding",
    "transpose_output_length",
]
