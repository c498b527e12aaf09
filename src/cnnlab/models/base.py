"""What every zoo model is: a feature extractor followed by a head.

``model.features(x)``: image batch (N, C, H, W) -> last feature map (N, F, h, w),
the map CAM and Grad-CAM read. ``model.head(f)``: feature map -> output
(logits for classifiers, values for regressors). ``model(x) == head(features(x))``.

Attributes every created model carries (set by :func:`cnnlab.models.create`):
``input_shape`` (H, W, C) in Keras order, ``num_features`` (F, the width of the
last feature map, what a new head receives), and ``config``, the JSON-safe
arguments that rebuild it with ``create(**config)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.ops.limits import MAX_SIZE

POOLINGS = (None, "avg", "max")


class CoreArgs(TypedDict):
    """What :func:`cnnlab.models.create` passes every builder, besides its options.

    A builder is ``def name(*, option=default, ..., **core: Unpack[CoreArgs])``: its
    keyword-only parameters are the options `cnnlab models` lists.
    """

    num_classes: int
    input_shape: tuple[int, int, int]  # (H, W, C), Keras order
    include_top: bool


class ZooModel(nn.Module):
    """``head(features(x))`` with the attributes the trainer and explainers need."""

    def __init__(self, features: nn.Module, head: nn.Module, *, num_features: int) -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.num_features = num_features
        self.input_shape: tuple[int, int, int] = (0, 0, 0)
        self.config: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def backbone_head(pooling: str | None) -> nn.Module:
    """The head of an ``include_top=False`` model, as Keras Applications' ``pooling``.

    None: the feature map itself (N, F, h, w); "avg" / "max": global pooling to (N, F).
    """
    if pooling is None:
        return nn.Identity()
    if pooling == "avg":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if pooling == "max":
        return nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
    raise CnnlabError(
        f"unknown pooling {pooling!r}",
        where="pooling",
        fix="use None (feature map), 'avg' or 'max' (global pooling to one vector per image)",
    )


def check_top_options(include_top: bool, pooling: str | None) -> None:
    """``pooling`` only shapes a backbone; with a top it would be silently ignored."""
    backbone_head(pooling)
    if include_top and pooling is not None:
        raise CnnlabError(
            f"pooling={pooling!r} only applies to a backbone",
            where="pooling",
            fix="pass include_top=False with pooling, or drop pooling",
        )


def check_input_shape(
    name: str, input_shape: Sequence[int], *, min_size: int, channels: int | None = None
) -> tuple[int, int, int]:
    """Validate an (H, W, C) input shape for model ``name``; return it as a tuple."""
    try:
        height, width, chans = (int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise CnnlabError(
            f"input_shape must be (height, width, channels), got {input_shape!r}",
            where=f"{name}: input_shape",
            fix="pass three integers in Keras order, e.g. (224, 224, 3)",
        ) from None
    if max(height, width, chans) > MAX_SIZE:
        raise CnnlabError(
            f"input_shape {height}x{width}x{chans} has a size over the limit of {MAX_SIZE}",
            where=f"{name}: input_shape",
            fix="resize the images, e.g. to 224x224x3",
        )
    if height < min_size or width < min_size:
        raise CnnlabError(
            f"input {height}x{width} is smaller than the {min_size}x{min_size} this network needs",
            where=f"{name}: input_shape",
            fix=f"resize the images to at least {min_size}x{min_size}",
        )
    if chans < 1 or (channels is not None and chans != channels):
        want = f"{channels}" if channels is not None else "at least 1"
        raise CnnlabError(
            f"input has {chans} channels; this network takes {want}",
            where=f"{name}: input_shape",
            fix=f"pass input_shape=({height}, {width}, {channels or 3})",
        )
    return height, width, chans
