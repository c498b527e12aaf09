"""Cost of building from a spec: a SpecModel vs the same network written in plain torch.nn.

Prints one JSON line per network: forward + backward ms per step (median) for
both, and whether their outputs agree (same weights). Networks: seed 003's MNIST
net (valid padding) and a stride-2 'same' net, where Keras padding is dynamic
(F.pad before the conv) and the plain-torch twin pads symmetrically (same cost,
not the same numbers).

    PYTHONPATH=src python benchmarks/spec_overhead.py [--steps 20] [--batch 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch import nn

from cnnlab.spec import build

NETS = {
    "mnist_3conv": {
        "input_shape": [28, 28, 1],
        "layers": [
            {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D"},
            {"type": "Conv2D", "filters": 64, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D"},
            {"type": "Conv2D", "filters": 128, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D"},
            {"type": "Flatten"},
            {"type": "Dense", "units": 10},
        ],
    },
    "strided_same": {
        "input_shape": [64, 64, 3],
        "layers": [
            {"type": "Conv2D", "filters": 32, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
            {"type": "Conv2D", "filters": 64, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
            {"type": "Conv2D", "filters": 128, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
            {"type": "GlobalAveragePooling2D"},
            {"type": "Dense", "units": 10},
        ],
    },
}


def plain_twin(spec_model: nn.Module) -> nn.Sequential:
    """The same layers as torch.nn modules sharing the weights (NCHW flatten order)."""
    layers: list[nn.Module] = []
    for entry in spec_model.spec["layers"]:
        module = spec_model.layers[entry["name"]]
        kind = entry["type"]
        if kind == "Conv2D":
            pad = 1 if entry["padding"] == "same" else 0
            conv = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride, pad)
            conv.weight, conv.bias = module.weight, module.bias
            layers += [conv, nn.ReLU()]
        elif kind == "MaxPooling2D":
            layers.append(nn.MaxPool2d(2))
        elif kind == "Flatten":
            layers.append(nn.Flatten())
        elif kind == "GlobalAveragePooling2D":
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        elif kind == "Dense":
            linear = nn.Linear(module.in_features, module.out_features)
            linear.weight, linear.bias = module.weight, module.bias
            layers.append(linear)
    return nn.Sequential(*layers)


def _once(model: nn.Module, x: torch.Tensor) -> float:
    if x.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    model(x).sum().backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def paired_ms(a: nn.Module, b: nn.Module, x: torch.Tensor, steps: int) -> tuple[float, float]:
    """Median ms per forward + backward of ``a`` and ``b``, timed alternately (fair under load)."""
    for _ in range(3):
        _once(a, x), _once(b, x)
    times_a, times_b = [], []
    for _ in range(steps):
        times_a.append(_once(a, x))
        times_b.append(_once(b, x))
    return statistics.median(times_a), statistics.median(times_b)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    for name, spec in NETS.items():
        model = build(spec, seed=0).to(args.device)
        twin = plain_twin(model).to(args.device)
        h, w, c = spec["input_shape"]
        x = torch.randn(args.batch, c, h, w, device=args.device)
        with torch.no_grad():
            same_numbers = bool(torch.allclose(model(x), twin(x), atol=1e-5)) if name == "mnist_3conv" else None
        spec_ms, plain_ms = paired_ms(model, twin, x, args.steps)
        record = {
            "bench": "spec_overhead",
            "net": name,
            "device": args.device,
            "batch": args.batch,
            "threads": torch.get_num_threads(),
            "spec_ms": round(spec_ms, 2),
            "plain_torch_ms": round(plain_ms, 2),
            "outputs_equal": same_numbers,
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
        }
        print(json.dumps(record))


if __name__ == "__main__":
    main()
