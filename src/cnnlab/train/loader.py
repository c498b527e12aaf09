"""A minimal batch loader over tensors already in memory (for arrays passed to ``fit`` and tests).

Whole batches are indexed at once (no per-sample Python work). The order of
epoch ``e`` depends only on ``(seed, e)``, so a resumed run sees the same
batches. ``cnnlab.data.BatchLoader`` follows the same protocol:
``set_epoch(e)``, ``__iter__`` yielding ``(x, y)``, ``__len__`` in batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from cnnlab.errors import CnnlabError


class TensorLoader:
    """Batches of ``(x[i], y[i])``; ``x`` (N, C, H, W) float, ``y`` (N,) or (N, K)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False) -> None:
        if len(x) != len(y):
            raise CnnlabError(f"x has {len(x)} samples and y {len(y)}", where="TensorLoader(x, y)",
                              fix="give one target per image")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise CnnlabError(f"batch size must be a positive integer, got {batch_size!r}", where="batch_size",
                              fix="e.g. 32")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[index], self.y[index]
