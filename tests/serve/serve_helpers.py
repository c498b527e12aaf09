"""Tiny bundles for the export and serve tests (random weights; no training needed to compare runtimes)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

# The tiny CNN the app and CLI tests serve (16x16x3, three classes).
CLASSES = ["circle", "square", "triangle"]
SPEC = {
    "name": "tiny_cnn",
    "input_shape": [16, 16, 3],
    "layers": [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 2},
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 3, "activation": "softmax"},
    ],
}


def randomise_norms(module: torch.nn.Module, seed: int = 0) -> None:
    """Give batch norms non-trivial statistics, so the export's folding of them is really checked."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def make_bundle(folder: Path, model: str | dict[str, Any], *, shape: tuple[int, int, int] | None = None,
                classes: list[str] | None = None, standardize: bool = False, task: str = "classification",
                metrics: dict[str, float] | None = None, seed: int = 0, **options: Any) -> Path:
    """Save a bundle of zoo model ``model`` (a name) or a spec (a dict) at ``shape`` (H, W, C)."""
    from cnnlab.inference.bundle import save_bundle
    from cnnlab.inference.head import find_output_head

    torch.manual_seed(seed)
    if isinstance(model, dict):
        from cnnlab.spec import build

        module = build(model, seed=seed)
        arch: dict[str, Any] = {"kind": "spec", "spec": module.spec}
        shape = shape or tuple(module.input_shape)
    else:
        from cnnlab.models import create

        n = len(classes) if classes else None
        module = create(model, num_classes=n, input_shape=shape, **options)
        arch = {"kind": "zoo", "config": dict(module.config)}
        shape = tuple(module.config["input_shape"])
    module.eval()
    randomise_norms(module, seed)
    h, w, c = shape
    head = find_output_head(module, torch.rand(2, c, h, w))
    units = head.units
    if task != "regression" and head.activation == "linear":
        head = head.for_task(task)
    classes = classes or ([f"class{i}" for i in range(max(units, 2))] if task != "regression" else None)
    pre: dict[str, Any] = {"image_size": [h, w], "channels": c, "resize": "bilinear-stretch", "alpha": "white",
                           "scale": 1 / 255, "mean": None, "std": None}
    if standardize:
        pre["mean"] = [0.4 + 0.05 * i for i in range(c)]
        pre["std"] = [0.2 + 0.03 * i for i in range(c)]
    meta = {"architecture": arch, "classes": classes, "input_shape": [h, w, c], "preprocessing": pre,
            "task": task, "output": {"activation": head.activation, "in_model": head.module is not None, "units": units},
            "metrics": metrics if metrics is not None else {"val_accuracy": 0.875, "val_loss": 0.41}}
    save_bundle(folder, module, meta)
    return folder


def png_bytes(array: np.ndarray) -> bytes:
    return image_bytes(Image.fromarray(array))


def image_bytes(image: Image.Image, fmt: str = "PNG", **save: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


class SvdNet(torch.nn.Module):
    """A layer ONNX cannot express: singular values."""

    def __init__(self, num_classes: int = 3, input_shape=(8, 8, 1), include_top: bool = True) -> None:
        super().__init__()
        self.dense = torch.nn.Linear(input_shape[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(torch.linalg.svdvals(x[:, 0])).softmax(-1)


def register_svd_model(monkeypatch) -> str:
    from cnnlab.models import registry

    registry.names()  # the families first, so the temporary entry is not overwritten
    entry = registry.ModelInfo(name="svdnet", family="test", input_shape=(8, 8, 1), num_classes=3, params=27,
                               trainable=27, reference="test", min_size=2, description="test",
                               builder=lambda *, num_classes, input_shape, include_top: SvdNet(num_classes, input_shape))
    monkeypatch.setitem(registry._REGISTRY, "svdnet", entry)
    return "svdnet"
