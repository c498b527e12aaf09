"""The CIFAR ResNet / plain family's ``width`` option (the first stage's filters; stages w, 2w, 4w)."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.models import count, create, info


def hand_count(depth: int, width: int, channels: int = 3, classes: int = 10) -> tuple[int, int]:
    """(total, trainable) by hand: n = (depth - 2) / 6 blocks a stage, bias-free 3x3 convs, option A shortcuts."""
    n, w = (depth - 2) // 6, width
    convs = 9 * (channels * w                                   # the stem
                 + 2 * n * w * w                                 # stage 1: 2n convs w -> w
                 + w * 2 * w + (2 * n - 1) * (2 * w) ** 2        # stage 2: one w -> 2w, the rest 2w -> 2w
                 + 2 * w * 4 * w + (2 * n - 1) * (4 * w) ** 2)   # stage 3
    bn_channels = w + 2 * n * (w + 2 * w + 4 * w)
    trainable = convs + 2 * bn_channels + 4 * w * classes + classes
    return trainable + 2 * bn_channels, trainable


def test_width_8_counts_match_the_hand_formula() -> None:
    assert hand_count(20, 8) == (68_738, 68_050)  # worked out on paper: 9 * 7448 + 688 + 330 trainable
    for depth in (20, 56):
        for name in (f"resnet{depth}", f"plain{depth}"):
            counted = count(name, width=8)
            assert (counted.total, counted.trainable) == hand_count(depth, 8), name


def test_width_16_is_he_et_al_net() -> None:
    for name in ("resnet20", "plain20", "resnet56", "plain56", "resnet110"):
        depth = int(name.removeprefix("resnet").removeprefix("plain"))
        default, explicit = count(name), count(name, width=16)
        assert (default.total, default.trainable) == (explicit.total, explicit.trainable) == hand_count(depth, 16)
        assert (info(name).params, info(name).trainable) == hand_count(depth, 16)
    torch.manual_seed(0)
    a = create("resnet20").state_dict()
    torch.manual_seed(0)
    b = create("resnet20", width=16).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_width_shapes_and_config() -> None:
    model = create("plain20", width=4, num_classes=3).eval()
    assert model.config["width"] == 4 and model.num_features == 16
    assert model.features.layer3[0].conv1.weight.shape == (16, 8, 3, 3)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    backbone = create("resnet20", width=4, include_top=False)
    assert backbone(torch.zeros(1, 3, 32, 32)).shape == (1, 16, 8, 8)


@pytest.mark.parametrize("bad", [0, -3])
def test_width_below_one_is_refused(bad: int) -> None:
    # 0 passes the registry's check of whole numbers (0..MAX_SIZE) and is refused by the family; -3 by the registry.
    expected = rf"^resnet56: option 'width': must be a whole number .*, got {bad} Fix: pass e\.g\. width=16"
    with pytest.raises(CnnlabError, match=expected):
        create("resnet56", width=bad)
