"""cifar_speedrun: the airbench options (patch-whitening stem, fixed BN scales, dirac init)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.models import create
from cnnlab.models.speedrun import init_whitening, whitening_filters


def correlated_images(n: int = 64, seed: int = 0) -> torch.Tensor:
    """Images whose neighbouring pixels and channels are correlated (a blurred mix), not centred."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 10, 10, generator=g, dtype=torch.float64)
    x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 2, 1)[:, :, :10, :10]
    mix = torch.tensor([[1.0, 0.5, 0.2], [0.3, 1.0, 0.4], [0.1, 0.2, 1.0]], dtype=torch.float64)
    return torch.einsum("dc,nchw->ndhw", mix, x) + 0.3


def test_whitening_filters_make_the_patch_second_moment_the_identity():
    images = correlated_images()
    filters = whitening_filters(images, kernel_size=2, eps=0.0).double()
    assert filters.shape == (24, 3, 2, 2)
    assert torch.equal(filters[12:], -filters[:12])
    out = F.conv2d(images, filters[:12])  # every 2x2 patch, as the stem sees it
    flat = out.permute(1, 0, 2, 3).reshape(12, -1)
    moment = flat @ flat.T / flat.shape[1]
    assert torch.allclose(moment, torch.eye(12, dtype=torch.float64), atol=1e-4)
    # and the raw patches are far from white
    raw = F.unfold(images, 2).transpose(1, 2).reshape(-1, 12)
    assert not torch.allclose(raw.T @ raw / len(raw), torch.eye(12, dtype=torch.float64), atol=0.1)
    # with eps the moment is diag(l / (l + eps)): below 1, larger directions closer to 1
    soft = F.conv2d(images, whitening_filters(images, 2, eps=0.05).double()[:12]).permute(1, 0, 2, 3).reshape(12, -1)
    diag = torch.diagonal(soft @ soft.T / soft.shape[1])
    assert (diag < 1).all() and (diag[:-1] >= diag[1:] - 1e-6).all()


def test_whitened_model_shapes_frozen_stem_and_init():
    model = create("cifar_speedrun", num_classes=10, input_shape=(32, 32, 3), whiten=True, bn_scale=False,
                   dirac=True, logit_scale=1 / 9)
    stem = model.features.stem.conv
    assert stem.weight.shape == (24, 3, 2, 2) and not stem.weight.requires_grad and stem.bias.requires_grad
    images = correlated_images(16).float()
    init_whitening(model, images)
    # What the stem now does, checked on its own outputs: the first 12 filters whiten the 2x2 patches
    # (second moment diag(l / (l + eps)): 0 off the diagonal, at most 1 on it, ~1 for the strong
    # directions), the last 12 are their negatives.
    w = stem.weight.detach().double()
    assert torch.equal(w[12:], -w[:12])
    flat = F.conv2d(images.double(), w[:12]).permute(1, 0, 2, 3).reshape(12, -1)
    moment = flat @ flat.T / flat.shape[1]
    diag = torch.diagonal(moment)
    assert (moment - torch.diag(diag)).abs().max() < 1e-3
    assert (diag <= 1 + 1e-4).all() and diag[0] > 0.999 and (diag[:-1] >= diag[1:] - 1e-4).all()
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    assert model.features(x).shape == (2, 256, 3, 3)  # 32 -> 31 (2x2, no padding) -> 15 -> 7 -> 3
    assert model(x).shape == (2, 10)
    assert model.head.fc.scale == pytest.approx(1 / 9)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 6 and all(not bn.weight.requires_grad and bn.bias.requires_grad for bn in bns)


def test_dirac_convs_pass_their_first_channels_through():
    model = create("cifar_speedrun", num_classes=10, input_shape=(32, 32, 3), dirac=True)
    conv = model.features.group2.conv2  # 256 -> 256
    x = torch.randn(1, 256, 5, 5)
    assert torch.allclose(conv(x), x, atol=1e-6)
    widen = model.features.group2.conv1  # 64 -> 256: the first 64 outputs copy the input
    x = torch.randn(1, 64, 5, 5)
    assert torch.allclose(widen(x)[:, :64], x, atol=1e-6)
    assert not torch.allclose(widen(x)[:, 64:128], x, atol=1e-2)


def test_default_model_is_unchanged_and_has_no_whitening_stem():
    model = create("cifar_speedrun", num_classes=10, input_shape=(32, 32, 3))
    assert sum(p.numel() for p in model.parameters()) == 1_978_016
    assert [k for k in model.state_dict() if k.startswith("features.stem")][:3] == [
        "features.stem.conv.weight", "features.stem.bn.weight", "features.stem.bn.bias"]
    with pytest.raises(CnnlabError, match="whitening stem"):
        init_whitening(model, torch.zeros(2, 3, 8, 8))
    with pytest.raises(CnnlabError, match=r"\(N, C, H, W\)"):
        whitening_filters(torch.zeros(3, 8, 8))
