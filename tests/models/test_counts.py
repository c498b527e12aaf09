"""Parameter counts equal the published references (Keras-style: BN moving stats non-trainable).

Models are built on the meta device: exact counts, no memory, no initialisation time.
"""

from __future__ import annotations

import pytest

from cnnlab.models import count, info, names

# (name, Keras total or None, trainable or None), from Keras Applications / torchvision docs.
REFERENCES = [
    ("vgg16", 138_357_544, 138_357_544),  # Keras and torchvision agree
    ("vgg19", 143_667_240, 143_667_240),
    ("resnet50", 25_636_712, None),  # Keras Applications ResNet50 (conv biases before BN)
    ("densenet121", 8_062_504, None),  # Keras Applications
    ("densenet169", 14_307_880, None),
    ("densenet201", 20_242_984, None),
    ("alexnet", 61_100_840, 61_100_840),  # torchvision
    ("googlenet", None, 6_624_904),  # torchvision's trainable count, no aux heads
    ("mnist_3conv", 93_962, 93_962),  # seed 003's model.summary()
]


@pytest.mark.parametrize(("name", "total", "trainable"), REFERENCES)
def test_reference_counts(name: str, total: int | None, trainable: int | None) -> None:
    counted = count(name)
    if total is not None:
        assert counted.total == total
    if trainable is not None:
        assert counted.trainable == trainable


def test_torchvision_counts_without_keras_extras() -> None:
    # torchvision's published numbers: bias-free ResNet convs, BN stats not counted.
    assert count("resnet50", conv_bias=False).trainable == 25_557_032
    assert count("resnet18", conv_bias=False).trainable == 11_689_512
    assert count("resnet152", conv_bias=False).trainable == 60_192_808
    assert count("densenet121").trainable == 7_978_856
    assert count("densenet161").trainable == 28_681_000
    assert count("vgg16_bn").trainable == 138_365_992
    assert count("googlenet", aux_logits=True).trainable == 13_004_888


@pytest.mark.parametrize(
    ("depth", "millions"), [(20, "0.27"), (32, "0.46"), (44, "0.66"), (56, "0.85"), (110, "1.7")]
)
def test_cifar_resnets_match_he_et_al_table_6(depth: int, millions: str) -> None:
    digits = len(millions.split(".")[1])
    for name in (f"resnet{depth}", f"plain{depth}"):  # option A shortcuts add no parameters
        assert f"{count(name).trainable / 1e6:.{digits}f}" == millions


def test_registered_counts_are_the_built_ones() -> None:
    # `cnnlab models` lists the registered constants without building anything.
    for name in names():
        entry = info(name)
        built = count(name)
        assert (entry.params, entry.trainable) == (built.total, built.trainable), name
