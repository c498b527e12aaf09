"""The layers of LeNet-5 as published (LeCun, Bottou, Bengio, Haffner 1998).

Three pieces have no counterpart in torch or Keras:

- :class:`ScaledTanh`: the paper's squashing function f(a) = A tanh(S a) with
  A = 1.7159 and S = 2/3, chosen so that f(1) = 1 and f(-1) = -1.
- :class:`Subsampling`: layers S2 and S4. Each output unit adds the four inputs
  of its 2x2 cell, multiplies the sum by a trainable coefficient and adds a
  trainable bias, one pair per feature map (2 parameters per map):
  ``y[n, c, i, j] = coef[c] * sum(x[n, c, 2i:2i+2, 2j:2j+2]) + bias[c]``;
  output (N, C, floor(H/2), floor(W/2)).
- :class:`PartialConv2d`: layer C3, a 5x5 convolution in which output map ``o``
  sees only the input maps listed in a connection table (Table I of the paper).
  Only the connected kernels are parameters, so C3 has
  ``connections * k * k + out_channels`` = 60 * 25 + 16 = 1,516 of them.
- :class:`EuclideanRBF`: the output layer, one Euclidean radial basis unit per
  class, ``y[n, k] = -sum_j (x[n, j] - w[k, j])**2``. The paper fixes the
  centres by hand to +-1 codes; here they are a frozen parameter (Keras counts
  it as non-trainable) drawn deterministically as +-1. The sign is flipped so
  that the output behaves as logits: the largest value is the predicted class.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.nn.errors import LayerArgumentError

# Table I of LeCun et al. 1998: for each of the 16 C3 maps, the S2 maps it reads.
# Maps 0-5 read 3 contiguous S2 maps, 6-11 read 4 contiguous ones, 12-14 read 4
# discontinuous ones and map 15 reads all six (60 connections in all).
LENET5_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip


class ScaledTanh(nn.Module):
    """f(a) = amplitude * tanh(slope * a); LeNet-5 uses 1.7159 tanh(2a/3)."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.4f}"


class Subsampling(nn.Module):
    """Trainable sum-pooling over disjoint ``size`` x ``size`` cells (LeNet S2/S4).

    Input (N, C, H, W) -> output (N, C, floor(H/size), floor(W/size)).
    Parameters: ``weight`` (C,) and ``bias`` (C,).
    """

    def __init__(self, channels: int, size: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.size = size
        # The paper initialises weights uniformly in +-2.4 / fan_in, fan_in = 4 here.
        self.weight = nn.Parameter(torch.empty(channels).uniform_(-2.4 / size**2, 2.4 / size**2))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        summed = F.avg_pool2d(x, self.size) * (self.size * self.size)
        return summed * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.channels}, size={self.size}"


class PartialConv2d(nn.Module):
    """A 'valid' convolution whose output map ``o`` reads only ``table[o]``.

    Input (N, in_channels, H, W) -> (N, len(table), H - k + 1, W - k + 1).
    ``weight`` holds one k x k kernel per connection, in table order:
    shape (sum(len(t) for t in table), k, k); ``bias`` has one value per output map.
    """

    def __init__(self, in_channels: int, table: Sequence[Sequence[int]], kernel_size: int = 5) -> None:
        super().__init__()
        outs: list[int] = []
        ins: list[int] = []
        for out_map, inputs in enumerate(table):
            for in_map in inputs:
                if not 0 <= in_map < in_channels:
                    raise LayerArgumentError(
                        "PartialConv2d", "table", f"output map {out_map} names input map {in_map}, but there are {in_channels} (0..{in_channels - 1})",
                        f"name input maps 0..{in_channels - 1} only",
                    )
                outs.append(out_map)
                ins.append(in_map)
        self.in_channels = in_channels
        self.out_channels = len(table)
        self.kernel_size = kernel_size
        self.table = tuple(tuple(t) for t in table)
        # Index buffers are bookkeeping, not weights: count_params ignores them.
        self.register_buffer("out_index", torch.tensor(outs, dtype=torch.long), persistent=False)
        self.register_buffer("in_index", torch.tensor(ins, dtype=torch.long), persistent=False)
        # Paper initialisation: uniform in +-2.4 / fan_in, fan_in per output map.
        fan_in = torch.tensor([len(table[o]) * kernel_size**2 for o in outs], dtype=torch.float32)
        bound = (2.4 / fan_in).view(-1, 1, 1)
        self.weight = nn.Parameter((torch.rand(len(outs), kernel_size, kernel_size) * 2 - 1) * bound)
        self.bias = nn.Parameter(torch.zeros(self.out_channels))

    def dense_weight(self) -> torch.Tensor:
        """The equivalent full kernel (out, in, k, k), zeros where not connected."""
        k = self.kernel_size
        full = self.weight.new_zeros(self.out_channels, self.in_channels, k, k)
        return full.index_put((self.out_index, self.in_index), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.dense_weight(), self.bias)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={self.weight.shape[0]}"
        )


class EuclideanRBF(nn.Module):
    """Negated squared Euclidean distance to one fixed centre per class.

    Input (N, features) -> (N, classes); ``y[n, k] = -||x[n] - centres[k]||^2``.
    The centres are +-1 codes drawn from a fixed seed and frozen (the paper chose
    them by hand and kept them fixed); set ``trainable=True`` to learn them.
    """

    def __init__(self, in_features: int, classes: int, *, trainable: bool = False, seed: int = 1998) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        # Drawn on the CPU so the codes are the same whatever the default device is.
        codes = torch.randint(0, 2, (classes, in_features), generator=generator, device="cpu").float() * 2 - 1
        self.weight = nn.Parameter(codes.to(torch.empty(0).device), requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ||x||^2 - 2 x.w + ||w||^2, expanded so the batch never materialises (N, K, F).
        distances = (
            x.pow(2).sum(1, keepdim=True) - 2 * x @ self.weight.t() + self.weight.pow(2).sum(1).unsqueeze(0)
        )
        return -distances

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}, classes={self.weight.shape[0]}"
