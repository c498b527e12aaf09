"""Zoo models: check every one at its default input, then time training steps.

Prints one JSON line per measurement:
  {"bench": "zoo_check", "model": ..., "input": [H, W, C], "ok": true, "output": [N, K]}
  {"bench": "zoo_train_step", "model": ..., "device": ..., "batch": B, "input": [H, W, C],
   "amp": bool, "channels_last": bool, "ms_per_step_median": ..., "images_per_s": ...}

Usage: python benchmarks/zoo_speed.py [--device cuda] [--check] [--models resnet50,resnet20] [--steps 20]
A training step is forward, cross-entropy, backward and one SGD step on random data
(no data loading), with the device synchronised around each timed step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cnnlab.models import create, info, names  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_all(device: torch.device) -> None:
    """Forward + backward of every model at its default input size, batch 2."""
    for name in names():
        entry = info(name)
        height, width, channels = entry.input_shape
        model = create(name).to(device)
        x = torch.randn(2, channels, height, width, device=device)
        out = model(x)
        out.float().pow(2).mean().backward()
        ok = tuple(out.shape) == (2, entry.num_classes) and all(
            p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.requires_grad
        )
        print(json.dumps({"bench": "zoo_check", "model": name, "device": str(device), "input": list(entry.input_shape),
                          "ok": ok, "output": list(out.shape)}), flush=True)
        del model, x, out
        if device.type == "cuda":
            torch.cuda.empty_cache()


def time_training(name: str, device: torch.device, batch: int, steps: int, amp: bool, channels_last: bool) -> dict:
    entry = info(name)
    height, width, channels = entry.input_shape
    torch.manual_seed(0)
    model = create(name).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, channels, height, width, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, entry.num_classes, (batch,), device=device)
    times = []
    for step in range(steps + 3):  # 3 warm-up steps
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y) if entry.num_classes > 1 else F.mse_loss(logits.float().squeeze(1), y.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        if step >= 3:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"bench": "zoo_train_step", "model": name, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "batch": batch, "input": list(entry.input_shape), "amp": amp, "channels_last": channels_last,
            "ms_per_step_median": round(median * 1000, 2), "ms_per_step_best": round(min(times) * 1000, 2),
            "images_per_s": round(batch / median, 1), "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--check", action="store_true", help="forward/backward every model at its default input first")
    parser.add_argument("--models", default="resnet20,resnet50,vgg16,densenet121,googlenet")
    parser.add_argument("--batch", type=int, default=0, help="0: 128 for 32x32 nets, 64 otherwise (8 on CPU)")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.check:
        check_all(device)
    for name in args.models.split(","):
        small = info(name).input_shape[0] <= 32
        batch = args.batch or (8 if device.type == "cpu" else (128 if small else 64))
        variants = [(False, False)] if device.type == "cpu" else [(False, False), (True, True)]
        for amp, channels_last in variants:
            print(json.dumps(time_training(name, device, batch, args.steps, amp, channels_last)), flush=True)


if __name__ == "__main__":
    main()
