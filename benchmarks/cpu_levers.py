"""Interleaved A/B of CPU training-step levers (issue 20): eager vs torch.compile, SGD foreach vs fused.

One process; every variant trains its own copy of the same zoo model (same seed) on the
same fixed batches; rounds alternate the variants step by step (A, B, C, A, B, C, ...),
so a burst of load from other processes hits all alike. Prints one JSON line per case:
compile seconds (first step, including Inductor's C++ build), median step seconds per
variant and the ratio to eager.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/cpu_levers.py --cases mnist_3conv,resnet20 \\
        --batch-size 128 --variants eager,compile,fused_sgd --rounds 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

SHAPES = {"mnist_3conv": (28, 28, 1), "fashion_mnist_practice": (28, 28, 1), "resnet20": (32, 32, 3)}


def build(case: str, variant: str, batch: int):
    from cnnlab.models import create

    torch.manual_seed(0)
    model = create(case, num_classes=10, input_shape=SHAPES[case]).to(memory_format=torch.channels_last)
    model.train()
    fused = variant.startswith("fused")
    kind = torch.optim.Adam if variant.endswith("adam") else torch.optim.SGD
    extra = {} if kind is torch.optim.Adam else {"momentum": 0.9}
    opt = kind(model.parameters(), lr=0.01 if kind is torch.optim.SGD else 1e-3, foreach=not fused,
               fused=fused or None, **extra)
    forward = model
    if variant.startswith("compile"):
        mode = "max-autotune-no-cudagraphs" if variant == "compile_max" else None  # compile_atenpool: default
        forward = torch.compile(model, mode=mode)
    return model, forward, opt


def step(forward, opt, x, y, bf16: bool) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = forward(x)
    loss = F.cross_entropy(out.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def run(case: str, batch: int, variants: list[str], rounds: int, bf16: bool) -> dict:
    h, w, c = SHAPES[case]
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, c, h, w, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), generator=g)
    built = {v: build(case, v, batch) for v in variants}
    first = {}
    for v, (_, forward, opt) in built.items():
        start = time.perf_counter()
        step(forward, opt, x, y, bf16)
        first[v] = time.perf_counter() - start
        for _ in range(2):
            step(forward, opt, x, y, bf16)
    times: dict[str, list[float]] = {v: [] for v in variants}
    losses = {}
    for _ in range(rounds):
        for v, (_, forward, opt) in built.items():
            start = time.perf_counter()
            losses[v] = float(step(forward, opt, x, y, bf16))
            times[v].append(time.perf_counter() - start)
    med = {v: float(np.median(t)) for v, t in times.items()}
    base = med.get("eager", next(iter(med.values())))
    return {"case": case, "batch_size": batch, "bf16": bf16, "threads": torch.get_num_threads(),
            "first_step_s": {v: round(s, 2) for v, s in first.items()},
            "median_step_s": {v: round(s, 4) for v, s in med.items()},
            "speedup_vs_eager": {v: round(base / s, 3) for v, s in med.items()},
            "images_per_s": {v: round(batch / s, 1) for v, s in med.items()},
            "last_loss": {v: round(l, 5) for v, l in losses.items()},
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def aten_pooling_under_inductor() -> None:
    """Experiment (variant compile_atenpool): Inductor keeps ATen's max pooling (forward and
    backward) instead of generating its own kernels; patches Inductor internals of torch 2.13."""
    from torch._inductor import lowering

    aten = torch.ops.aten
    lowering.should_fallback_max_pool_with_indices = lambda kernel_size, *, n_dim: True
    fallback = lowering.fallback_max_pool2d_with_indices_backward
    for op in (aten.max_pool2d_with_indices_backward, aten.max_pool2d_with_indices_backward.default):
        lowering.lowerings[op] = lambda *args, **kwargs: fallback(*args, **kwargs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default="mnist_3conv,resnet20")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--variants", default="eager,compile,fused_sgd",
                   help="eager (also eager2...: a second identical copy, the noise floor), compile (Inductor default "
                        "mode), compile_max (max-autotune-no-cudagraphs), compile_atenpool (Inductor with ATen's max "
                        "pooling; alone), fused_sgd, foreach_adam, fused_adam "
                        "(SGD is foreach unless fused_)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()
    if "compile_atenpool" in a.variants.split(","):
        aten_pooling_under_inductor()  # process-wide: run it without the plain compile variant
    for case in a.cases.split(","):
        print(json.dumps(run(case, a.batch_size, a.variants.split(","), a.rounds, a.bf16)), flush=True)


if __name__ == "__main__":
    main()
