"""Built models give the same numbers on a GPU as on the CPU (skipped without CUDA)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnlab.spec import build

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "keras_models.json").read_text())

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def _full_fp32(monkeypatch):
    # cuDNN convolutions default to TF32 (10-bit mantissa): compare in full float32.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


@pytest.mark.parametrize("index", range(0, len(FIXTURE["sequential"]), 8))
def test_cuda_forward_equals_cpu(index):
    spec = FIXTURE["sequential"][index]["spec"]
    model = build(spec, seed=0).eval()
    h = spec["input_shape"]
    x = torch.randn(2, h[-1], *h[:-1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
        got = model.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_cuda_bed_of_nails_pools_and_graphs():
    spec = {
        "input_shape": [9, 7, 3],
        "layers": [
            {"type": "BedOfNailsUpSampling2D", "name": "nails"},
            {"type": "AveragePooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
            {"type": "MaxPooling2D", "pool_size": 2, "padding": "same", "name": "pool"},
            {"type": "Conv2D", "filters": 3, "kernel_size": 2, "strides": 2, "padding": "same", "activation": "prelu", "name": "conv"},
            {"type": "Add", "inputs": ["conv", "conv"]},
        ],
    }
    model = build(spec, seed=0).eval()
    x = torch.randn(2, 3, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(model.cuda()(x.cuda()).cpu(), model.cpu()(x), atol=1e-5, rtol=1e-5)
