"""Data pipeline speed on ../shared/data: decode once, cached epochs, loader + augmentation vs model steps.

Prints one JSON line per measurement. Measures:

1. first-pass decode of the CIFAR-10 JPEG tree (60,000 files), from a folder the
   tar.gz is extracted to (a temp dir outside the repo) and from the tar.gz read in
   place, each into a fresh cache;
2. re-opening the cached set (no decode) and one epoch of the loader over it;
3. images/s of loader + augmentation (CIFAR recipe: crop_padding 4 + flip; Keras
   recipe: rotation, shifts, zoom, flip), kornia vs plain affine_grid warp;
4. images/s that a training step (forward, backward, SGD) of the MNIST 3-conv net
   and CIFAR ResNet-20 consumes at the same batch size, and the loader's share of a step.

Usage: .venv/bin/python benchmarks/data.py [--shared ../shared/data] [--batch 128] [--skip-decode]
       .venv/bin/python benchmarks/data.py --synthetic --device cuda   (GPU machine without the shared data)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tarfile
import tempfile
import time
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


DEVICE = torch.device("cpu")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeat: int = 1):
    best = float("inf")
    result = None
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_decode(shared: Path, work: Path) -> None:
    from cnnlab.data import open_dataset

    archive = shared / "cifar10-jpeg.tar.gz"
    seconds, _ = timed(lambda: tarfile.open(archive).extractall(work, filter="data"))
    emit(bench="extract_tar", seconds=round(seconds, 2), note="tar.gz -> temp dir, not part of cnnlab")
    tree = str(work / "cifar10-jpeg")
    os.environ["CNNLAB_CACHE"] = str(work / "cache-folder")
    seconds, sets = timed(lambda: [open_dataset(tree, split=s) for s in ("train", "test")])
    files = sum(len(s) for s in sets)
    emit(bench="first_pass_decode", source="folder", files=files, seconds=round(seconds, 2),
         files_per_s=round(files / seconds))
    seconds, _ = timed(lambda: [open_dataset(tree, split=s) for s in ("train", "test")], repeat=3)
    emit(bench="cached_open", source="folder", files=files, seconds=round(seconds, 3))
    os.environ["CNNLAB_CACHE"] = str(work / "cache-tar")
    seconds, sets = timed(lambda: [open_dataset(str(archive), split=s) for s in ("train", "test")])
    emit(bench="first_pass_decode", source="tar.gz read in place", files=sum(len(s) for s in sets),
         seconds=round(seconds, 2), files_per_s=round(sum(len(s) for s in sets) / seconds))
    seconds, _ = timed(lambda: [open_dataset(str(archive), split=s) for s in ("train", "test")], repeat=3)
    emit(bench="cached_open", source="tar.gz", files=files, seconds=round(seconds, 3))
    os.environ["CNNLAB_CACHE"] = str(work / "cache-folder")


def per_item_ms(iterator_factory, count: int) -> tuple[float, float]:
    """Median and best milliseconds per item of ``count`` items, each timed alone.

    Per-item timing with a median resists the bursts of a shared machine far better
    than one long wall-clock total."""
    times = []
    iterator = iterator_factory()
    for _ in range(count):
        sync()
        start = time.perf_counter()
        try:
            next(iterator)
        except StopIteration:
            iterator = iterator_factory()
            next(iterator)
        sync()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times), 1000 * min(times)


def bench_loader(train, batch: int, batches: int) -> dict[str, float]:
    from cnnlab.data import Augment, BatchLoader

    out = {}
    loader = BatchLoader(train, batch, shuffle=True, seed=0, device=DEVICE)
    seconds, n = timed(lambda: sum(len(y) for _, y in loader.iter_epoch(0)), repeat=2)
    emit(bench="cached_epoch", images=n, batch=batch, seconds=round(seconds, 3), images_per_s=round(n / seconds))
    recipes = {
        "none": None,
        "cifar(crop4+flip)": {"crop_padding": 4, "horizontal_flip": True},
        "keras(rot15,shift0.1,zoom0.1,flip)": {"rotation_range": 15, "width_shift_range": 0.1,
                                               "height_shift_range": 0.1, "zoom_range": 0.1, "horizontal_flip": True},
    }
    for name, config in recipes.items():
        for backend in ("kornia", "torch") if config and "rotation_range" in config else ("kornia",):
            augment = Augment(**config, backend=backend) if config else None
            loader = BatchLoader(train, batch, shuffle=True, seed=0, augment=augment, device=DEVICE)
            per_item_ms(lambda: loader.iter_epoch(1), 5)  # warm-up
            median, best = per_item_ms(lambda: loader.iter_epoch(1), batches)
            label = f"{name}/{backend}" if config and "rotation_range" in config else name
            out[label] = median
            emit(bench="loader_augment", augment=name, warp=backend if config and "rotation_range" in config else "-",
                 batch=batch, ms_per_batch_median=round(median, 3), ms_per_batch_best=round(best, 3),
                 images_per_s_median=round(batch / median * 1000))
    return out


def bench_models(batch: int, steps: int) -> dict[str, float]:
    from cnnlab import models

    out = {}
    for name, shape in (("mnist_3conv", (1, 28, 28)), ("resnet20", (3, 32, 32))):
        torch.manual_seed(0)
        model = models.create(name).to(DEVICE)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.rand(batch, *shape, device=DEVICE)
        y = torch.randint(0, 10, (batch,), device=DEVICE)
        loss_fn = torch.nn.CrossEntropyLoss()

        def steps_forever():
            while True:
                optimizer.zero_grad(set_to_none=True)
                loss_fn(model(x), y).backward()  # CE on the outputs: fine for timing
                optimizer.step()
                yield

        per_item_ms(steps_forever, 2)  # warm-up
        median, best = per_item_ms(steps_forever, steps)
        out[name] = median
        emit(bench="train_step", model=name, batch=batch, ms_per_step_median=round(median, 2),
             ms_per_step_best=round(best, 2), images_per_s_median=round(batch / median * 1000))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--batches", type=int, default=100, help="batches timed per loader measurement")
    parser.add_argument("--steps", type=int, default=15, help="training steps timed per model")
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--synthetic", action="store_true",
                        help="no shared data: a random uint8 CIFAR-sized set (50,000 x 32x32x3) for the loader parts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 resists a shared machine's bursts: no barrier waits)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = torch.device(args.device)
    warnings.simplefilter("ignore")
    emit(bench="machine", python=platform.python_version(), torch=torch.__version__, threads=torch.get_num_threads(),
         cpus=os.cpu_count(), load=os.getloadavg(), device=str(DEVICE),
         gpu=torch.cuda.get_device_name() if DEVICE.type == "cuda" else None)
    shared = Path(args.shared)
    work = Path(tempfile.mkdtemp(prefix="cnnlab-bench-data-"))
    try:
        from cnnlab.data import open_dataset

        if args.synthetic:
            import numpy as np

            from cnnlab.data import ImageSet

            rng = np.random.default_rng(0)
            train = ImageSet(data=rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8),
                             targets=rng.integers(0, 10, 50000), classes=[str(i) for i in range(10)],
                             task="classification", name="synthetic")
        elif args.skip_decode:
            os.environ["CNNLAB_CACHE"] = str(work / "cache-tar")
            train = open_dataset(str(shared / "cifar10-jpeg.tar.gz"))
        else:
            bench_decode(shared, work)
            train = open_dataset(str(work / "cifar10-jpeg"))
        loader_rates = bench_loader(train, args.batch, args.batches)
        model_rates = bench_models(args.batch, args.steps)
        for model, step_ms in model_rates.items():
            for recipe, batch_ms in loader_rates.items():
                emit(bench="loader_share_of_step", model=model, augment=recipe,
                     share=round(batch_ms / step_ms, 4), note="median loader ms per batch / median training-step ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
