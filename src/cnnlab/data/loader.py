"""Batches on the device, with no per-sample Python: the loader for training and evaluation.

What a batch is:

- ``x``: float32 ``(B, C, H, W)`` on the device, computed from the uint8 images as
  ``((u8 / 255) -> augment -> * (scale * 255) - mean) / std`` per channel, where
  ``scale`` (default 1/255, Keras's ``rescale``), ``mean`` and ``std`` (None = no
  standardisation) come from the ``preprocessing`` dict. With the defaults, x is
  simply ``u8 / 255`` in [0, 1].
- ``y``: int64 class indices ``(B,)`` or float32 numbers ``(B,)`` on the device.

The ``preprocessing`` dict (JSON-friendly) is everything predict needs to turn an
image file into the same ``x``: ``image_size`` [H, W], ``channels``, ``resize``
(``"bilinear-stretch"``), ``alpha`` (``"white"``: transparency composited over
white), ``scale``, ``mean``, ``std``. Save it in ``model.json``; at predict time
:func:`prepare_images` applies it.

Sets up to ``resident_limit_bytes`` (default 2 GiB) are copied to the device once
as uint8 ``(N, C, H, W)``, and those whose float32 copy also fits are kept as
float32 already scaled (and standardised when there is no augmentation): a batch
is then one gather, as in a hand-written loop over tensors in memory. Larger sets are gathered from
the (memory-mapped) array on the host, in file order, then moved.

Determinism: the order of epoch ``e`` is a permutation drawn from ``(seed, e)``
alone, and the augmentation of batch ``b`` from ``(seed, e, b)`` alone, so a run
resumed at epoch k (``set_epoch(k)``, or ``iter_epoch(k, start_batch=b)`` in the
middle of one) sees exactly the batches of an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cnnlab.data.augment import Augment
from cnnlab.data.imageset import ImageSet
from cnnlab.errors import CnnlabError

DEFAULT_SCALE = 1.0 / 255.0


def make_preprocessing(imageset: ImageSet, *, standardize: bool = False, rescale: float | None = None) -> dict[str, Any]:
    """The ``preprocessing`` dict for a training set: size, channels, scale and optional mean/std.

    ``standardize``: per-channel mean and std of ``u8 * scale`` over the whole set
    (compute it on the training part only and reuse the dict for validation and predict).
    """
    h, w, c = imageset.image_shape
    scale = DEFAULT_SCALE if rescale is None else float(rescale)
    mean = std = None
    if standardize:
        total = np.zeros(c)
        total_sq = np.zeros(c)
        count = 0
        for start in range(0, len(imageset), 4096):
            chunk = imageset.gather(np.arange(start, min(start + 4096, len(imageset)))).astype(np.float64) * scale
            total += chunk.sum(axis=(0, 1, 2))
            total_sq += (chunk * chunk).sum(axis=(0, 1, 2))
            count += chunk.shape[0] * h * w
        mean_arr = total / count
        std_arr = np.sqrt(np.maximum(total_sq / count - mean_arr**2, 0.0))
        mean = [float(v) for v in mean_arr]
        std = [float(v) if v > 1e-12 else 1.0 for v in std_arr]
    return {"image_size": [h, w], "channels": c, "resize": "bilinear-stretch", "alpha": "white",
            "scale": scale, "mean": mean, "std": std}


def check_preprocessing(pre: Any, where: str = "preprocessing") -> None:
    """Refuse a ``preprocessing`` dict (the module doc) that is not image_size [H, W],
    channels 1 or 3, an optional positive scale and optional per-channel mean / std."""

    def bad(what: str) -> CnnlabError:
        return CnnlabError(f"{what}, got {pre!r}", where=where,
                           fix="use the preprocessing dict a run saved in model.json (make_preprocessing)")

    if not isinstance(pre, dict) or not pre:
        raise bad("must be a mapping {image_size, channels, scale, mean, std}")
    size = pre.get("image_size")
    if not (isinstance(size, (list, tuple)) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1 << 16 for v in size)):
        raise bad("image_size must be [height, width] of positive whole numbers")
    if isinstance(pre.get("channels"), bool) or pre.get("channels") not in (1, 3):
        raise bad("channels must be 1 or 3")
    scale = pre.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0):
        raise bad("scale must be a positive number")
    for key in ("mean", "std"):
        value = pre.get(key)
        if value is not None and not (isinstance(value, (list, tuple)) and len(value) == pre["channels"]
                                      and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            raise bad(f"{key} must be one number per channel")


def normalize(x: Tensor, preprocessing: dict[str, Any] | None, *, from_unit: bool = False) -> Tensor:
    """uint8 (or [0, 1] float when ``from_unit``) ``(B, C, H, W)`` -> the network's float input."""
    pre = preprocessing or {}
    scale = float(pre.get("scale") or DEFAULT_SCALE)
    x = x.float()
    if from_unit:
        if scale != DEFAULT_SCALE:
            x = x * (scale * 255.0)
    else:
        x = x / 255.0 if scale == DEFAULT_SCALE else x * scale  # exact u8 / 255 by default
    if pre.get("mean") is not None:
        mean = torch.tensor(pre["mean"], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(pre["std"], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
    return x


def prepare_images(images: list[str | Path | np.ndarray], preprocessing: dict[str, Any], device: str | torch.device = "cpu") -> Tensor:
    """Files or uint8 ``(H, W[, C])`` arrays -> the network's input ``(B, C, H, W)``, as in training."""
    from cnnlab.data.decode import BadImage, decode_image

    check_preprocessing(preprocessing)
    h, w = preprocessing["image_size"]
    c = int(preprocessing["channels"])
    batch = np.empty((len(images), h, w, c), dtype=np.uint8)
    for i, item in enumerate(images):
        if isinstance(item, np.ndarray):
            from PIL import Image

            array = item if item.ndim == 3 else item[..., None]
            mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(array.shape[2])
            if array.dtype != np.uint8 or mode is None:
                raise CnnlabError(f"image {i} must be uint8 (H, W), (H, W, 3) or (H, W, 4), got {array.dtype} {array.shape}",
                                  where="images", fix="convert it to uint8 first")
            image = Image.fromarray(array[..., 0] if mode == "L" else array, mode)
            import io

            buffer = io.BytesIO()
            image.save(buffer, format="PNG")  # lossless: reuse the one decode path
            item = buffer.getvalue()
        try:
            batch[i] = decode_image(item, (h, w), c)
        except BadImage as bad:
            raise CnnlabError(f"cannot use this image: {bad}", where=str(item) if not isinstance(item, bytes) else f"images[{i}]",
                              fix="give a readable JPEG/PNG/... image") from None
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(device)
    return normalize(x, preprocessing)


def _epoch_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)


class BatchLoader:
    """Iterate ``(x, y)`` batches of an :class:`ImageSet` on ``device`` (see the module docstring)."""

    def __init__(
        self,
        imageset: ImageSet,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        device: str | torch.device = "cpu",
        augment: Augment | None = None,
        drop_last: bool = False,
        preprocessing: dict[str, Any] | None = None,
        rank: int = 0,
        world_size: int = 1,
        resident_limit_bytes: int = 2 << 30,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise CnnlabError(f"batch size must be a positive integer, got {batch_size!r}", where="batch_size",
                              fix="e.g. 32, 64 or 128")
        if len(imageset) == 0:
            raise CnnlabError("the data set is empty", where=imageset.name or "data", fix="give a set with images")
        self.imageset = imageset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.device = torch.device(device)
        self.augment = augment
        self.drop_last = drop_last
        if not 0 <= rank < world_size:
            raise CnnlabError(f"rank {rank} is not in a world of {world_size}", where="rank", fix="0 <= rank < world_size")
        if len(imageset) < world_size:
            raise CnnlabError(f"the set has {len(imageset)} image(s), fewer than the {world_size} processes",
                              where=imageset.name or "data", fix="use fewer processes or more images")
        self.rank, self.world_size = rank, world_size
        rescale = augment.rescale if augment is not None else None
        self.preprocessing = preprocessing or make_preprocessing(imageset, rescale=rescale)
        self.epoch = 0
        self.targets = torch.from_numpy(np.asarray(imageset.targets)).to(self.device)
        self._stats: tuple[Tensor, Tensor] | None = None
        if self.preprocessing.get("mean") is not None:
            self._stats = tuple(torch.tensor(self.preprocessing[k], dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
                                for k in ("mean", "std"))  # type: ignore[assignment]
        h, w, c = imageset.image_shape
        self.resident = len(imageset) * h * w * c <= resident_limit_bytes
        self._images: Tensor | None = None
        self._floats: Tensor | None = None
        if self.resident:
            # One copy to the device as (N, C, H, W) uint8: every batch is then one gather.
            # (one writable copy in NCHW order, also for read-only memmaps)
            host = np.array(np.asarray(imageset.images).transpose(0, 3, 1, 2), order="C")
            self._images = torch.from_numpy(host).to(self.device)
            if 4 * self._images.numel() <= resident_limit_bytes:
                # Small enough to keep as float32 too (MNIST 188 MB, CIFAR-10 614 MB): the
                # per-batch conversion is done once for the whole set, with the same
                # elementwise ops, so batches are bit-identical and cost one gather.
                if augment is None:
                    self._floats = self._normalize(self._images, from_unit=False)
                else:
                    self._floats = self._images.float().div_(255.0)
                self._images = None

    # -- sizes and epochs --------------------------------------------------------------

    def __len__(self) -> int:
        """Batches per epoch: the same on every rank, that of one process with batch ``world_size * batch_size``."""
        n, global_batch = len(self.imageset), self.batch_size * self.world_size
        return n // global_batch if self.drop_last else -(-n // global_batch)

    def global_batch_size(self, batch_index: int) -> int:
        """Samples in batch ``batch_index`` summed over the ranks (the single-process batch's size)."""
        global_batch = self.batch_size * self.world_size
        return max(0, min(global_batch, len(self.imageset) - batch_index * global_batch))

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter(loader)`` yield epoch ``epoch`` (for resume)."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """Positions of this rank's samples in epoch ``epoch``, in batch order."""
        n = len(self.imageset)
        if self.shuffle:
            generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
            perm = torch.randperm(n, generator=generator).numpy()
        else:
            perm = np.arange(n)
        if self.world_size > 1:
            # Positions r, r + W, ...: batch b of every rank together is the single-process batch b of
            # W * batch_size; no padding, so the last shard may be shorter (or empty, see iter_epoch).
            perm = perm[: len(self) * self.batch_size * self.world_size][self.rank :: self.world_size]
        return perm

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch = self.epoch
        yield from self.iter_epoch(epoch)
        self.epoch = epoch + 1

    def iter_epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """Batches of epoch ``epoch`` from batch ``start_batch`` on; does not change ``self.epoch``.

        With several ranks every rank yields ``len(self)`` batches; when the last global
        batch has fewer samples than there are ranks, the ranks past them get an empty
        batch (0 samples), which the trainer runs so that the ranks' collectives line up.
        """
        order = self.order(epoch)
        # The whole epoch's order goes to the device once; batches slice it there.
        on_device = self._to_device(torch.from_numpy(order.astype(np.int64)))
        for b in range(start_batch, len(self)):
            window = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield self._batch(order[window], on_device[window], epoch, b)

    def batch(self, idx: np.ndarray, *, epoch: int = 0, batch_index: int = 0) -> tuple[Tensor, Tensor]:
        """The ``(x, y)`` of positions ``idx`` (augmented as batch ``batch_index`` of ``epoch``)."""
        idx = np.asarray(idx, dtype=np.int64)
        return self._batch(idx, self._to_device(torch.from_numpy(idx)), epoch, batch_index)

    def _to_device(self, tensor: Tensor) -> Tensor:
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _batch(self, idx: np.ndarray, index: Tensor, epoch: int, batch_index: int) -> tuple[Tensor, Tensor]:
        y = self.targets[index]
        if len(idx) == 0:  # an empty last shard (several ranks): the right shapes, nothing to augment
            h, w, c = self.imageset.image_shape
            return torch.zeros((0, c, h, w), device=self.device), y
        if self._floats is not None:
            x = self._floats[index]  # already scaled, and standardised when there is no augmentation
            if self.augment is None:
                return x, y
        else:
            raw = self._images[index] if self._images is not None else \
                self._to_device(torch.from_numpy(self.imageset.gather(idx)).permute(0, 3, 1, 2))
            if self.augment is None:
                return self._normalize(raw, from_unit=False), y
            x = raw.float().div_(255.0)
        # Each rank draws its own augmentations (one process: the seeds of before).
        parts = (self.seed, epoch, batch_index, 1) + ((self.rank,) if self.world_size > 1 else ())
        generator = torch.Generator().manual_seed(_epoch_seed(*parts))
        return self._normalize(self.augment(x, generator), from_unit=True), y

    def _normalize(self, x: Tensor, *, from_unit: bool) -> Tensor:
        """:func:`normalize` with mean / std kept on the device (no copy per batch)."""
        if self._stats is None:
            return normalize(x, self.preprocessing, from_unit=from_unit)
        x = normalize(x, {**self.preprocessing, "mean": None, "std": None}, from_unit=from_unit)
        return (x - self._stats[0]) / self._stats[1]
