"""The loaded model: a bundle plus its preprocessing, ready to predict on images.

``load(path)`` reads a bundle (``model.json`` + ``weights.safetensors``) or a run
folder's final bundle without unpickling anything. Explain, report, export and
serve consume :class:`LoadedModel`; nothing here imports the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.inference.head import OutputHead, labels_of, squeeze_single_unit

class LoadedModel:
    """A trained model with what it needs to predict on images: ``predict(images)``."""

    def __init__(self, module: nn.Module, meta: dict[str, Any], path: Path) -> None:
        self.module, self.meta, self.path = module.eval(), meta, path
        out = meta.get("output", {})
        self.head = OutputHead(out.get("activation", "linear"), module if out.get("in_model") else None,
                               int(out.get("units", 0)))
        self.classes: list[str] | None = meta.get("classes")
        self.task: str = meta.get("task", "classification")
        self.preprocessing: dict[str, Any] = meta.get("preprocessing") or {}

    def require_preprocessing(self) -> dict[str, Any]:
        """The preprocessing dict, or a clear error for a bundle saved without one (images need it)."""
        if not self.preprocessing:
            raise CnnlabError("model.json has no 'preprocessing' (image size, channels, scale), so images cannot be "
                              "prepared for this model", where=str(self.path / "model.json"),
                              fix="save the bundle with meta['preprocessing'] (cnnlab.data.make_preprocessing), "
                                  "or call predict_tensor on network inputs")
        return self.preprocessing

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    @torch.no_grad()
    def predict_tensor(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Network inputs (N, C, H, W) -> probabilities (classification) or values (regression)."""
        outs = [self.head.probabilities(self.module(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        return torch.cat(outs) if outs else torch.zeros(0)

    def prepare(self, images: Any) -> torch.Tensor:
        """Paths, PIL images, uint8 arrays (H, W[, C]) or (N, H, W[, C]) -> network inputs."""
        from cnnlab.data.loader import normalize, prepare_images

        self.require_preprocessing()
        fast = self._prepare_array(images)
        if fast is not None:
            return normalize(fast, self.preprocessing)

        if isinstance(images, (str, Path)) or not isinstance(images, (list, tuple, np.ndarray)):
            images = [images]
        if isinstance(images, np.ndarray):
            images = list(images) if images.ndim == 4 or (images.ndim == 3 and images.shape[-1] not in (1, 3, 4)) \
                else [images]
        items = [np.asarray(im) if _is_pil(im) else (str(im) if isinstance(im, Path) else im) for im in images]
        return prepare_images(items, self.preprocessing)

    def _prepare_array(self, images: Any) -> torch.Tensor | None:
        """uint8 arrays already at the model's size and channel count -> (N, C, H, W) uint8, else None.

        Such images need no decoding, resizing or colour conversion, so the general
        path (one lossless PNG round trip per image) would give the very same pixels;
        this skips it (predict on in-memory batches is then ~10x faster).
        """
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or not self.preprocessing:
            return None
        h, w = (int(v) for v in self.preprocessing.get("image_size", (0, 0)))
        c = int(self.preprocessing.get("channels", 0))
        # The same reading of the array's shape as prepare(): (N, H, W, C), one (H, W, C)
        # image when the last axis is 1, 3 or 4, else (N, H, W) grey; (H, W) one grey image.
        shape, ndim = images.shape, images.ndim
        single = ndim == 2 or (ndim == 3 and shape[-1] in (1, 3, 4))
        if ndim == 4 or (ndim == 3 and single):
            ok = shape[-3:] == (h, w, c)
        else:
            ok = ndim in (2, 3) and c == 1 and shape[-2:] == (h, w)
        if not ok:
            return None
        batch = images.reshape(-1, h, w, c)
        return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)

    def predict(self, images: Any) -> np.ndarray:
        """Probabilities (N, K) / (N,) for one sigmoid unit, or values (N,) for regression."""
        return squeeze_single_unit(self.predict_tensor(self.prepare(images)).float().numpy())

    def predict_classes(self, images: Any) -> list[Any]:
        """Class names (argmax, or the 0.5 threshold of one sigmoid unit), or numbers for regression."""
        return labels_of(self.predict(images), self.task, self.classes)


def _is_pil(item: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return False
    return isinstance(item, Image.Image)


def load(path: str | Path, model: nn.Module | None = None) -> LoadedModel:
    """Load a bundle (or a run folder's final bundle) without unpickling anything."""
    from cnnlab.inference.bundle import load_bundle

    from cnnlab.files import path_kind

    path = Path(path)
    kind = path_kind(path)
    if kind == "missing":
        raise CnnlabError("no such bundle or run folder", where=str(path), fix="give the --out folder of a run")
    if kind != "dir":
        raise CnnlabError("is a file, not a bundle or run folder", where=str(path),
                          fix="give the folder that holds model.json and weights.safetensors")
    module, meta = load_bundle(path, model)
    return LoadedModel(module, meta, path)
