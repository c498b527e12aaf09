"""Time to 93% test accuracy on the CIFAR-10 JPEG copy, trained by cnnlab's trainer on one GPU.

The recipe (after Keller Jordan's airbench / David Page's DAWNBench runs): the
zoo's ``cifar_speedrun`` net (conv-BN-GELU groups 64/256/256 with max pooling),
the whole data set on the device as uint8 (``cnnlab.data.BatchLoader``), random
crop (pad 2) and horizontal flip on the device (``cnnlab.data.Augment``),
per-channel standardisation, bf16 autocast and channels-last (the trainer's
defaults on CUDA), SGD with Nesterov momentum 0.9, a one-cycle learning-rate
schedule, label smoothing 0.2, batch 512.

The clock starts when ``fit`` is called (data already decoded and on the device,
kernels warmed by one untimed run) and reads at every epoch end, after that
epoch's evaluation on the 10 000 test images; "time to 93%" is the clock at the
first epoch whose test accuracy is >= 0.93. Prints one JSON line per run.

    CNNLAB_DATA=/tmp/cnnlab-data python benchmarks/cifar_speedrun.py --data-root DIR --epochs 12,16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def build(epochs: int, batch_size: int, lr: float, device: torch.device, compile: bool, train_set, test_set,
          run_dir: Path, seed: int = 0):
    from cnnlab.data.augment import Augment
    from cnnlab.data.loader import BatchLoader, make_preprocessing
    from cnnlab.models import create
    from cnnlab.train.losses import make_loss
    from cnnlab.train.optim import make_optimizer, make_schedule
    from cnnlab.train.trainer import Trainer

    torch.manual_seed(seed)
    model = create("cifar_speedrun", num_classes=10, input_shape=(32, 32, 3))
    preprocessing = make_preprocessing(train_set, standardize=True)
    augment = Augment(horizontal_flip=True, crop_padding=2)
    train = BatchLoader(train_set, batch_size, shuffle=True, seed=seed, device=device, augment=augment,
                        preprocessing=preprocessing, drop_last=True)
    test = BatchLoader(test_set, 2000, shuffle=False, device=device, preprocessing=preprocessing)
    # BN parameters without weight decay, as in the fast recipes.
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = make_optimizer("sgd", [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr,
                               momentum=0.9, nesterov=True, weight_decay=5e-4)
    schedule = make_schedule("onecycle", optimizer, epochs=epochs, steps_per_epoch=len(train), pct_start=0.25)
    trainer = Trainer(model, make_loss("sparse_categorical_crossentropy", label_smoothing=0.2), optimizer,
                      schedule=schedule, metrics=["accuracy"], device=device, run_dir=run_dir, verbose=0,
                      compile=compile)
    return trainer, train, test


def run(epochs: int, args: argparse.Namespace, train_set, test_set, timed: bool = True) -> dict:
    from cnnlab.train.callbacks import Callback

    device = torch.device(args.device)
    marks: list[tuple[float, float, float]] = []  # (clock, test accuracy, train loss)
    start = [0.0]

    class Clock(Callback):
        def on_epoch_end(self, trainer, epoch, logs) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()
            marks.append((time.perf_counter() - start[0], logs["val_accuracy"], logs["loss"]))

    with tempfile.TemporaryDirectory(prefix="cnnlab-speedrun-") as tmp:
        trainer, train, test = build(epochs, args.batch_size, args.lr, device, args.compile, train_set, test_set,
                                     Path(tmp) / "run")
        trainer.callbacks.append(Clock())
        if device.type == "cuda":
            torch.cuda.synchronize()
        start[0] = time.perf_counter()
        trainer.fit(train, test, epochs=epochs)
        total = time.perf_counter() - start[0]
    hit = next(((t, a, i + 1) for i, (t, a, _) in enumerate(marks) if a >= args.target), None)
    return {
        "run": "cifar_speedrun", "epochs": epochs, "batch_size": args.batch_size, "lr": args.lr,
        "compile": args.compile, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "timed": timed, "train_images": len(train_set),
        "final_test_accuracy": round(marks[-1][1], 4), "seconds_to_last_epoch_end": round(marks[-1][0], 3),
        "seconds_total_with_checkpoints": round(total, 3),
        f"seconds_to_{args.target:g}": None if hit is None else round(hit[0], 3),
        f"epoch_reaching_{args.target:g}": None if hit is None else hit[2],
        "per_epoch": [[round(t, 3), round(a, 4), round(loss, 4)] for t, a, loss in marks],
    }


def plain_epochs(args: argparse.Namespace, train_set, epochs: int = 3) -> dict:
    """The floor: a bare loop over the same net, data on the device, bf16, channels-last,
    flip + crop by tensor ops; no metrics, no checkpoints. Seconds per epoch (train pass only)."""
    import torch.nn.functional as F

    from cnnlab.models import create

    device = torch.device(args.device)
    x = torch.from_numpy(train_set.images).to(device).permute(0, 3, 1, 2).float().div(255)
    mean, std = x.mean((0, 2, 3), keepdim=True), x.std((0, 2, 3), keepdim=True)
    x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(train_set.targets).to(device)
    model = create("cifar_speedrun", num_classes=10, input_shape=(32, 32, 3)).to(device)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    times = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(len(x), device=device)
        for i in range(len(x) // args.batch_size):
            index = order[i * args.batch_size:(i + 1) * args.batch_size]
            xb = x[index]
            flip = torch.rand(len(xb), device=device) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,)))  # one shift per batch: the cheap way
            xb = torch.roll(F.pad(xb, (2, 2, 2, 2)), (dy, dx), (2, 3))[:, :, 2:-2, 2:-2]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(xb).float(), y[index], label_smoothing=0.2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"run": "plain_loop_cifar_speedrun", "batch_size": args.batch_size, "epoch_seconds": [round(t, 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True, help="folder holding cifar10-jpeg.tar.gz")
    parser.add_argument("--epochs", default="12,16", help="comma-separated run lengths (one-cycle over each)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=0.4)
    parser.add_argument("--target", type=float, default=0.93)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--train-limit", type=int, default=0, help="(CPU smoke runs) use the first N images")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--plain", action="store_true", help="also time a bare loop's epochs (the floor)")
    args = parser.parse_args()
    from cnnlab.data.sources import open_dataset

    t0 = time.perf_counter()
    train_set = open_dataset("cifar10", split="train", root=args.data_root)
    test_set = open_dataset("cifar10", split="test", root=args.data_root)
    if args.train_limit:
        train_set, test_set = train_set.subset(range(args.train_limit)), test_set.subset(range(args.train_limit // 5))
    print(json.dumps({"decode_seconds": round(time.perf_counter() - t0, 2), "train": len(train_set),
                      "test": len(test_set)}), flush=True)
    runs = [int(e) for e in args.epochs.split(",")]
    if args.plain:
        print(json.dumps(plain_epochs(args, train_set)), flush=True)
    if not args.no_warmup:  # kernels, cuDNN autotuning, compile: outside the timed runs
        run(1, args, train_set, test_set, timed=False)
    for epochs in runs:
        print(json.dumps(run(epochs, args, train_set, test_set)), flush=True)


if __name__ == "__main__":
    main()
