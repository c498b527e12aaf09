"""Time to 93% test accuracy on the CIFAR-10 JPEG copy, trained by cnnlab's trainer on one GPU.

The recipe is airbench94's (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a
single A100"), built from cnnlab parts:

- net: zoo ``cifar_speedrun(whiten=True, bn_scale=False, dirac=True, logit_scale=1/9)``:
  a frozen 2x2 patch-whitening stem (``init_whitening`` on 5000 training images,
  inside the clock), conv-BN-GELU groups 64/256/256, BN momentum 0.4 (torch
  convention) with fixed scales; the whitening bias trains for 3 epochs only;
- data: the whole set on the device as uint8 (``BatchLoader``), random crop (pad 2,
  zero fill; airbench reflects) and flip on the device (``Augment``), per-channel
  standardisation, batch 1024 (last partial batch dropped);
- optimiser: SGD Nesterov, momentum 0.85, mean-loss lr 1.5 (airbench's 11.5 per
  1024 summed examples), BN shifts at 64x that lr, decay 0.0153 * 1024 / 7850.7
  per step scaled by the schedule, label smoothing 0.2; lr triangle 0.2 -> 1 at
  23 % of the steps -> 0.07 (``LambdaLR`` in a cnnlab ``Schedule``);
- lookahead: ``ExponentialMovingAverage(every=5, overwrite_frequency=1)`` with
  momentum ``0.95**5 * (step / total)**3``; the final weights are the average;
- test: ``predict_tta`` with ``"none"``, ``"flip"`` and ``"flip_translate"`` on the
  10 000 JPEG test images.

bf16 autocast and channels-last are the trainer's CUDA defaults; no checkpoints
(``run_dir=None``). The clock ("train_seconds") runs from the whitening init to
the end of ``fit`` (data decoded and on the device, kernels warmed by one
untimed run, as airbench); "eval_seconds" is the flip+translate evaluation,
which airbench counts too. Each run is one whole schedule of E epochs, so
"time to 93%" is the shortest run whose final accuracy is >= 0.93. Prints one
JSON line per run and a table at the end.

    CNNLAB_DATA=/tmp/cnnlab-data python benchmarks/cifar_speedrun.py --data-root DIR --epochs 10,12,14
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

KILOSTEP = 1 + 1 / (1 - 0.85)  # airbench's steps-per-gradient factor of Nesterov momentum 0.85
# Nets: widths, lr per 1024 summed examples and decay per 1024 examples, from airbench94 / 95 / 96
# (always our two-conv groups, flip + translate 2, no cutout).
PRESETS = {
    "airbench94": {"widths": [64, 256, 256], "lr": 11.5, "wd": 0.0153},
    "airbench95": {"widths": [128, 384, 384], "lr": 10.0, "wd": 0.0153},
    "wide512": {"widths": [128, 384, 512], "lr": 9.0, "wd": 0.012},
}
TTA_LEVELS = ("none", "flip", "flip_translate")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build(cfg: dict[str, Any], device: torch.device, train_set, preprocessing, total_steps: int):
    from cnnlab.data.augment import Augment
    from cnnlab.data.loader import BatchLoader
    from cnnlab.models import create
    from cnnlab.train.callbacks import Callback, ExponentialMovingAverage
    from cnnlab.train.losses import make_loss
    from cnnlab.train.optim import Schedule
    from cnnlab.train.trainer import Trainer

    torch.manual_seed(cfg["seed"])
    preset = PRESETS[cfg["preset"]]
    model = create("cifar_speedrun", num_classes=10, input_shape=(32, 32, 3), widths=preset["widths"], whiten=True,
                   bn_scale=False, dirac=True, logit_scale=1 / 9)
    train = BatchLoader(train_set, cfg["batch_size"], shuffle=True, seed=cfg["seed"], device=device,
                        augment=Augment(horizontal_flip=True, crop_padding=2), preprocessing=preprocessing,
                        drop_last=True)
    # mean-loss lr = airbench's per-example lr times the batch (1.5 for airbench94 at 1024); decay per step likewise
    lr = preset["lr"] / (1024 * KILOSTEP) * cfg["lr_scale"] * cfg["batch_size"]
    decay = preset["wd"] / (1024 * KILOSTEP) * cfg["batch_size"]
    bn_shifts = [p for n, p in model.named_parameters() if ".bn" in n and p.requires_grad]
    others = [p for n, p in model.named_parameters() if ".bn" not in n and p.requires_grad]
    groups = [{"params": bn_shifts, "lr": lr * 64, "weight_decay": decay / (lr * 64)},
              {"params": others, "lr": lr, "weight_decay": decay / lr}]
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=0.85, nesterov=True)
    peak = int(0.23 * total_steps)

    def triangle(step: int) -> float:
        if step < peak:
            return 0.2 + 0.8 * step / peak
        return 1.0 - 0.93 * (step - peak) / max(total_steps - peak, 1)

    schedule = Schedule("triangle", torch.optim.lr_scheduler.LambdaLR(optimizer, triangle), "step")
    whitening_bias = model.features.stem.conv.bias

    class FreezeWhiteningBias(Callback):  # airbench: the whitening bias learns for the first 3 epochs only
        def on_epoch_end(self, trainer, epoch, logs) -> None:
            if epoch + 1 == 3:
                whitening_bias.requires_grad_(False)

    callbacks: list[Any] = [FreezeWhiteningBias()]
    if cfg["ema"]:
        callbacks.append(ExponentialMovingAverage(momentum=lambda s: 0.95**5 * (s / total_steps) ** 3, every=5,
                                                  overwrite_frequency=1))
    trainer = Trainer(model, make_loss("sparse_categorical_crossentropy", label_smoothing=0.2), optimizer,
                      schedule=schedule, metrics=["accuracy"], callbacks=callbacks, device=device, run_dir=None,
                      verbose=0, compile=cfg["compile"])
    return trainer, train


@torch.no_grad()
def test_accuracy(trainer, test_x: torch.Tensor, test_y: torch.Tensor, tta: str) -> float:
    from cnnlab.inference.evaluate import predict_tta

    model = trainer.model
    model.eval()

    def logits(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=trainer.mixed_precision):
            return trainer.forward_model(x).float()

    right = 0
    for i in range(0, len(test_x), 2000):
        x = test_x[i:i + 2000]
        right += int((predict_tta(logits, x, tta).argmax(1) == test_y[i:i + 2000]).sum())
    model.train()
    return right / len(test_x)


def run(cfg: dict[str, Any], device: torch.device, train_set, preprocessing, test_x, test_y) -> dict[str, Any]:
    from cnnlab.data.loader import normalize
    from cnnlab.models.speedrun import init_whitening
    from cnnlab.train.callbacks import Callback

    steps_per_epoch = len(train_set) // cfg["batch_size"]
    total_steps = steps_per_epoch * cfg["epochs"]
    trainer, train = build(cfg, device, train_set, preprocessing, total_steps)
    marks: list[float] = []
    start = [0.0]

    class Clock(Callback):  # the trainer reads the loss at every epoch end (a sync): the mark costs nothing more
        def on_epoch_end(self, trainer, epoch, logs) -> None:
            marks.append(time.perf_counter() - start[0])

    trainer.callbacks.insert(0, Clock())
    whiten_images = torch.from_numpy(train_set.gather(np.arange(min(5000, len(train_set))))).to(device).permute(0, 3, 1, 2)
    sync(device)
    start[0] = time.perf_counter()
    init_whitening(trainer.model, normalize(whiten_images, preprocessing))
    history = trainer.fit(train, None, epochs=cfg["epochs"])
    sync(device)
    train_seconds = time.perf_counter() - start[0]
    result: dict[str, Any] = dict(cfg)
    result.update(train_seconds=round(train_seconds, 3), epoch_marks=[round(t, 3) for t in marks],
                  final_train_loss=round(history[-1]["loss"], 4))
    for tta in TTA_LEVELS:
        sync(device)
        t0 = time.perf_counter()
        result[f"acc_{tta}"] = round(test_accuracy(trainer, test_x, test_y, tta), 4)
        sync(device)
        result[f"eval_seconds_{tta}"] = round(time.perf_counter() - t0, 3)
    result["seconds_with_tta_eval"] = round(train_seconds + result["eval_seconds_flip_translate"], 3)
    return result


def plain_epochs(args: argparse.Namespace, train_set, preprocessing, epochs: int = 3) -> dict[str, Any]:
    """The floor: a bare loop over the same net and optimiser (data on the device, bf16,
    channels-last, flip + one shift per batch; no metrics, no EMA). Seconds per train pass."""
    import torch.nn.functional as F

    from cnnlab.data.loader import normalize
    from cnnlab.models import create

    device = torch.device(args.device)
    x = normalize(torch.from_numpy(np.asarray(train_set.images)).to(device).permute(0, 3, 1, 2), preprocessing)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(np.asarray(train_set.targets)).to(device)
    model = create("cifar_speedrun", num_classes=10, input_shape=(32, 32, 3), whiten=True, bn_scale=False,
                   dirac=True, logit_scale=1 / 9).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.85, nesterov=True,
                          weight_decay=1e-3)
    times = []
    for _ in range(epochs):
        sync(device)
        start = time.perf_counter()
        order = torch.randperm(len(x), device=device)
        for i in range(len(x) // args.batch_size):
            index = order[i * args.batch_size:(i + 1) * args.batch_size]
            xb = x[index]
            flip = torch.rand(len(xb), device=device) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,)))  # one shift per batch: the cheap way
            xb = torch.roll(F.pad(xb, (2, 2, 2, 2)), (dy, dx), (2, 3))[:, :, 2:-2, 2:-2]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = F.cross_entropy(model(xb).float(), y[index], label_smoothing=0.2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(device)
        times.append(time.perf_counter() - start)
    return {"run": "plain_loop", "batch_size": args.batch_size, "epoch_seconds": [round(t, 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True, help="folder holding cifar10-jpeg.tar.gz")
    parser.add_argument("--epochs", default="10,12,14", help="comma-separated run lengths (one schedule each)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per run length")
    parser.add_argument("--repeat-best", type=int, default=0,
                        help="then this many more seeds at the shortest length that reached --target")
    parser.add_argument("--ablations", action="store_true", help="then: no EMA, lr x0.7 and x1.4, batch 512")
    parser.add_argument("--presets", default="airbench94", help=f"comma-separated nets: {', '.join(PRESETS)}")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--target", type=float, default=0.93)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--train-limit", type=int, default=0, help="(CPU smoke runs) use the first N images")
    parser.add_argument("--plain", action="store_true", help="also time a bare loop's epochs (the floor)")
    parser.add_argument("--budget", type=float, default=0.0, help="start no new run after this many seconds")
    args = parser.parse_args()
    unknown = sorted(set(args.presets.split(",")) - set(PRESETS))
    if unknown:
        parser.error(f"unknown preset(s) {', '.join(unknown)}; use {', '.join(PRESETS)}")
    from cnnlab.data.loader import make_preprocessing, normalize
    from cnnlab.data.sources import open_dataset

    t_begin = time.perf_counter()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    train_set = open_dataset("cifar10", split="train", root=args.data_root)
    test_set = open_dataset("cifar10", split="test", root=args.data_root)
    if args.train_limit:
        train_set, test_set = train_set.subset(range(args.train_limit)), test_set.subset(range(args.train_limit // 5))
    decode = time.perf_counter() - t_begin
    preprocessing = make_preprocessing(train_set, standardize=True)
    test_x = normalize(torch.from_numpy(np.asarray(test_set.images)).to(device).permute(0, 3, 1, 2), preprocessing)
    test_x = test_x.contiguous(memory_format=torch.channels_last)
    test_y = torch.from_numpy(np.asarray(test_set.targets)).to(device)
    print(json.dumps({"decode_seconds": round(decode, 2), "train": len(train_set), "test": len(test_set),
                      "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                      "torch": torch.__version__}), flush=True)

    if args.plain:
        print(json.dumps(plain_epochs(args, train_set, preprocessing)), flush=True)
    results: list[dict[str, Any]] = []

    def go(cfg: dict[str, Any]) -> None:
        if args.budget and time.perf_counter() - t_begin > args.budget:
            return
        results.append(run(cfg, device, train_set, preprocessing, test_x, test_y))
        print(json.dumps(results[-1]), flush=True)

    lengths = [int(e) for e in args.epochs.split(",")]
    for i, preset in enumerate(args.presets.split(",")):
        base = {"preset": preset, "epochs": 1, "seed": 0, "batch_size": args.batch_size, "lr_scale": 1.0,
                "ema": True, "compile": args.compile}
        t0 = time.perf_counter()  # kernels, cuDNN autotuning: outside the timed runs
        warm = run({**base, "seed": 99}, device, train_set, preprocessing, test_x, test_y)
        print(json.dumps({"warmup_seconds": round(time.perf_counter() - t0, 2), "warmup_run": warm}), flush=True)
        for epochs in lengths:
            for seed in range(args.seeds):
                go({**base, "epochs": epochs, "seed": seed})
        mine = [r for r in results if r["preset"] == preset]
        hits = sorted(r["epochs"] for r in mine if r["acc_flip_translate"] >= args.target)
        best = hits[0] if hits else max(lengths)
        for seed in range(args.seeds, args.seeds + args.repeat_best):
            go({**base, "epochs": best, "seed": seed})
        if args.ablations and i == 0:
            go({**base, "epochs": best, "ema": False})
            go({**base, "epochs": best, "lr_scale": 0.7})
            go({**base, "epochs": best, "lr_scale": 1.4})
            go({**base, "epochs": best, "batch_size": 512})

    print(f"{'net':>10} {'epochs':>6} {'seed':>4} {'batch':>5} {'lr x':>5} {'ema':>5} {'train s':>8} {'acc':>7} "
          f"{'flip':>7} {'flip+tr':>7} {'s w/ eval':>9}")
    for r in results:
        print(f"{r['preset']:>10} {r['epochs']:>6} {r['seed']:>4} {r['batch_size']:>5} {r['lr_scale']:>5} {str(r['ema']):>5} "
              f"{r['train_seconds']:>8.2f} {r['acc_none']:>7.4f} {r['acc_flip']:>7.4f} "
              f"{r['acc_flip_translate']:>7.4f} {r['seconds_with_tta_eval']:>9.2f}")


if __name__ == "__main__":
    main()
