from __future__ import annotations

from torch import nn

from cnnlab.nn.params import count_params


def test_batchnorm_moving_statistics_are_non_trainable_weights():
    # Keras: BatchNormalization(32) has 128 params, 64 of them non-trainable.
    count = count_params(nn.BatchNorm2d(32))
    assert (count.trainable, count.non_trainable, count.total) == (64, 64, 128)


def test_frozen_parameters_count_as_non_trainable_and_shared_once():
    conv = nn.Conv2d(3, 8, 3)  # 3*3*3*8 + 8 = 224
    conv.bias.requires_grad_(False)
    model = nn.Sequential(conv, conv)
    count = count_params(model)
    assert (count.trainable, count.non_trainable) == (216, 8)
