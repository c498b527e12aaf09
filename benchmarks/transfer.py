"""Transfer learning on CIFAR-10, offline: the lecture notes' cats-vs-dogs-from-few-images experiment.

The notes fine-tune an ImageNet VGG16 on a few hundred cat and dog photos. Here,
offline and on a laptop CPU, the "large set" is the 8 CIFAR-10 classes other than
cat and dog (the JPEG copy in ../shared/data), the "small set" 500 training
images of cat and dog (250 each), and the test set the 2,000 test images of those
two classes:

1. pretrain a small CIFAR backbone on the 8 classes (``--pretrain-per-class`` images
   each, ``--pretrain-epochs`` epochs at a peak rate ``--pretrain-lr`` on
   ``--pretrain-schedule``, flips and shifts unless ``--no-pretrain-augment``) and save
   it as a bundle in ``--pretrained-dir`` (plus one snapshot per epoch,
   ``<dir>.epochN``, so a pretraining cut short on the shared machine is not lost).
   ``--backbone cnn`` (default): the spec CNN ``cnnlab train`` picks for 32x32 images
   (conv-BN-ReLU-max-pool blocks of 32, 64, 128 filters, global average pooling,
   94k parameters), or ``--backbone resnet20``, the zoo's CIFAR ResNet-20 (0.27M
   parameters, ~5x the CPU per image);
2. train three nets on the 500 images with one recipe (``--epochs``, Adam, cosine
   schedule, weight decay 5e-4, batch ``--batch-size``, flips and 1/8 shifts for all).
   The rate rule, the same for every variant: a randomly initialised layer trains at
   ``--lr``, a pretrained layer that trains at ``--backbone-lr-mult`` x ``--lr``:
   - ``scratch``: the same net from random weights (every layer new: all at ``--lr``);
   - ``fine_tuned``: the pretrained bundle through ``cnnlab.train.transfer``
     (backbone reused, new 2-class head), the head alone for ``--freeze-epochs``
     epochs, then everything, the backbone at ``--backbone-lr-mult`` x the rate;
   - ``frozen``: the pretrained backbone frozen throughout (batch norm in inference
     mode), only the new head trains (at ``--lr``);
   ``--variants`` runs a subset (``scratch`` needs no pretrained bundle);
3. accuracy on the 2,000 test images, and wall times.

Prints one JSON line per measurement and a summary line; the issue asks for
fine_tuned - scratch >= 10 accuracy points.

    CNNLAB_DATA=/tmp/cnnlab-data python benchmarks/transfer.py --data ../shared/data/cifar10-jpeg.tar.gz \
        --threads 1 --pretrain-epochs 8 --pretrained-dir /tmp/cifar8-cnn   # the run in benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

TARGET = ("cat", "dog")


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def per_class(imageset: Any, classes: list[str], count: int | None, seed: int) -> Any:
    """``count`` images (all when None) of each of ``classes``, a seeded random choice, relabelled 0..K-1."""
    from cnnlab.data.imageset import ImageSet

    rng = np.random.default_rng(seed)
    picked, labels = [], []
    for new, name in enumerate(classes):
        rows = np.flatnonzero(imageset.targets == imageset.classes.index(name))
        if count is not None:
            rows = rng.choice(rows, size=count, replace=False)
        picked.append(np.sort(rows))
        labels.append(np.full(len(rows), new, dtype=np.int64))
    order = np.concatenate(picked)
    return ImageSet(data=imageset.gather(order), targets=np.concatenate(labels), classes=list(classes),
                    task="classification", name=f"{imageset.name}:{'+'.join(classes)}")


class _Snapshot:
    """Save the bundle after every epoch (``<path>.epochN``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_begin(self, trainer: Any) -> None: ...

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, float]) -> None:
        trainer.save_bundle(self.path.with_name(f"{self.path.name}.epoch{epoch + 1}"), logs)
        emit({"step": "pretrain_epoch", "epoch": epoch + 1, **{k: round(float(v), 4) for k, v in logs.items()},
              "time": time.strftime("%H:%M:%S")})

    def on_train_end(self, trainer: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def train(model: torch.nn.Module, train_set: Any, test_set: Any, *, epochs: int, lr: float, batch_size: int, seed: int,
          backbone_lr_mult: float = 1.0, freeze: Any = "none", freeze_epochs: int = 0, bf16: bool = False,
          architecture: dict[str, Any] | None = None, schedule: str = "cosine", augment: bool = True,
          snapshots: Path | None = None) -> dict[str, Any]:
    """Train with cnnlab's trainer (Adam, ``schedule``, flips and shifts when ``augment``); test accuracy and times.

    ``snapshots``: save the bundle after every epoch to ``<snapshots>.epochN`` (a long pretraining
    on the shared machine can then be cut short and its last epoch still used)."""
    from cnnlab.data.augment import Augment
    from cnnlab.data.loader import BatchLoader, make_preprocessing
    from cnnlab.train.losses import make_loss
    from cnnlab.train.optim import make_optimizer, make_schedule
    from cnnlab.train.state import seed_everything
    from cnnlab.train.trainer import Trainer
    from cnnlab.train.transfer import Unfreeze, apply_freeze, freeze_plan, frozen_summary, param_groups

    seed_everything(seed)
    plan = freeze_plan(model, freeze)
    apply_freeze(plan)
    counts = frozen_summary(model)
    preprocessing = make_preprocessing(train_set)
    shifts = Augment(width_shift_range=0.125, height_shift_range=0.125, horizontal_flip=True, fill_mode="reflect")
    loader = BatchLoader(train_set, batch_size, shuffle=True, seed=seed, augment=shifts if augment else None,
                         preprocessing=preprocessing)
    test = BatchLoader(test_set, 500, shuffle=False, preprocessing=preprocessing)
    groups = param_groups(model, lr=lr, backbone_lr_mult=backbone_lr_mult)
    optimizer = make_optimizer("adam", groups, lr=lr, weight_decay=5e-4)
    lr_schedule = make_schedule(schedule, optimizer, epochs=epochs, steps_per_epoch=len(loader))
    callbacks: list[Any] = [Unfreeze(plan, freeze_epochs, backbone_lr_mult=backbone_lr_mult)] if plan and freeze_epochs else []
    if snapshots is not None:
        callbacks.append(_Snapshot(snapshots))
    meta = {"architecture": architecture or {"kind": "zoo", "config": dict(model.config)},
            "classes": train_set.classes, "input_shape": list(train_set.image_shape), "preprocessing": preprocessing}
    from rich.console import Console

    trainer = Trainer(model, make_loss("sparse_categorical_crossentropy"), optimizer, schedule=lr_schedule,
                      callbacks=callbacks, device="cpu", verbose=2, console=Console(stderr=True),
                      bundle_meta=meta, mixed_precision=bf16)
    start = time.perf_counter()
    history = trainer.fit(loader, None, epochs=epochs)
    seconds = time.perf_counter() - start
    scores = trainer.evaluate(test)
    return {"test_accuracy": round(scores["accuracy"], 4), "train_accuracy": round(history[-1]["accuracy"], 4),
            "train_seconds": round(seconds, 1), "epochs": epochs, "params": counts, "trainer": trainer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"))
    parser.add_argument("--pretrain-per-class", type=int, default=5000, help="images per class of the 8 (max 5000)")
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--pretrain-lr", type=float, default=3e-3)
    parser.add_argument("--pretrain-schedule", default="onecycle", help="cosine or onecycle (any cnnlab schedule)")
    parser.add_argument("--pretrain-augment", action=argparse.BooleanOptionalAction, default=False,
                        help="flips and shifts while pretraining (off: faster convergence in few epochs)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs on the 500 cat / dog images, every variant")
    parser.add_argument("--per-class", type=int, default=250)
    parser.add_argument("--lr", type=float, default=5e-3, help="the rate of new layers (all of scratch)")
    parser.add_argument("--freeze-epochs", type=int, default=2)
    parser.add_argument("--backbone-lr-mult", type=float, default=0.2, help="pretrained layers train at this x --lr")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backbone", choices=("cnn", "resnet20"), default="cnn")
    parser.add_argument("--pretrained-dir", default=None,
                        help="keep the pretrained bundle here; when it already holds one, reuse it (no pretraining)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="fp32: faster than bf16 autocast for these small nets on this CPU")
    parser.add_argument("--pretrain-only", action="store_true", help="stop after the pretraining")
    parser.add_argument("--variants", default="scratch,fine_tuned,frozen",
                        help="comma-separated subset of scratch, fine_tuned, frozen (scratch needs no pretraining)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-fine-tuned", default=None,
                        help="save the fine-tuned cats-vs-dogs net as a bundle here (for `cnnlab explain`)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from cnnlab.data.sources import open_dataset
    from cnnlab.models import create
    from cnnlab.spec import build
    from cnnlab.train.api import auto_spec
    from cnnlab.train.transfer import build_transfer_model, read_pretrained

    bf16 = args.precision == "bf16"

    def fresh(classes: int) -> tuple[torch.nn.Module, dict[str, Any] | None]:
        if args.backbone == "resnet20":
            torch.manual_seed(args.seed)
            return create("resnet20", num_classes=classes, input_shape=(32, 32, 3)), None
        model = build(auto_spec((32, 32, 3), classes, "softmax"), seed=args.seed)
        return model, {"kind": "spec", "spec": model.spec}

    wall = time.perf_counter()
    start = time.perf_counter()
    full_train = open_dataset(args.data, split="train")
    full_test = open_dataset(args.data, split="test")
    others = [c for c in full_train.classes if c not in TARGET]
    base = per_class(full_train, others, args.pretrain_per_class, args.seed)
    small = per_class(full_train, list(TARGET), args.per_class, args.seed)
    test = per_class(full_test, list(TARGET), None, args.seed)
    emit({"step": "data", "seconds": round(time.perf_counter() - start, 1), "pretrain_images": len(base),
          "pretrain_classes": others, "train_images": len(small), "test_images": len(test)})

    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    with tempfile.TemporaryDirectory(prefix="cnnlab-transfer-") as tmp:
        bundle = Path(args.pretrained_dir) if args.pretrained_dir else Path(tmp) / "pretrained"
        if wanted == ["scratch"] and not args.pretrain_only:
            emit({"step": "pretrain", "skipped": "only the scratch variant"})
        elif (bundle / "model.json").is_file():
            emit({"step": "pretrain", "reused": str(bundle)})
        else:
            backbone, architecture = fresh(len(others))
            pre = train(backbone, base, per_class(full_test, others, 200, args.seed), epochs=args.pretrain_epochs,
                        lr=args.pretrain_lr, batch_size=128, seed=args.seed, bf16=bf16, architecture=architecture,
                        schedule=args.pretrain_schedule, augment=args.pretrain_augment, snapshots=bundle)
            bundle.mkdir(parents=True, exist_ok=True)
            pre["trainer"].save_bundle(bundle)
            emit({"step": "pretrain", "model": args.backbone, "params": pre["params"], "classes": len(others),
                  "images": len(base), "epochs": args.pretrain_epochs, "seconds": pre["train_seconds"],
                  "test_accuracy_8_classes_1600_images": pre["test_accuracy"]})
        if args.pretrain_only:
            return

        results: dict[str, dict[str, Any]] = {}
        variants = {
            "scratch": {"freeze": "none"},
            "fine_tuned": {"freeze": "features", "freeze_epochs": args.freeze_epochs,
                           "backbone_lr_mult": args.backbone_lr_mult},
            "frozen": {"freeze": "features"},
        }
        for name, settings in variants.items():
            if name not in wanted:
                continue
            architecture = None
            if name == "scratch":
                model, architecture = fresh(2)
            else:
                model = build_transfer_model(read_pretrained(bundle), None, {}, input_shape=(32, 32, 3), outputs=2,
                                             activation="softmax", seed=args.seed).module
            result = train(model, small, test, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                           seed=args.seed, bf16=bf16, architecture=architecture or {"kind": "spec", "spec": getattr(model, "spec", None)}
                           if args.backbone == "cnn" else None, **settings)
            trainer = result.pop("trainer")
            if name == "fine_tuned" and args.keep_fine_tuned:
                trainer.save_bundle(Path(args.keep_fine_tuned))
            results[name] = result
            emit({"step": "cats_vs_dogs", "variant": name, **settings, **result})
    accuracy = {name: result["test_accuracy"] for name, result in results.items()}
    gap = ({"fine_tuned_minus_scratch_points": round(100 * (accuracy["fine_tuned"] - accuracy["scratch"]), 1)}
           if {"fine_tuned", "scratch"} <= set(accuracy) else {})
    emit({"step": "summary", **accuracy, **gap, "epochs": args.epochs, "lr": args.lr,
          "backbone_lr_mult": args.backbone_lr_mult, "freeze_epochs": args.freeze_epochs,
          "wall_seconds": round(time.perf_counter() - wall, 1), "threads": args.threads, "backbone": args.backbone,
          "precision": args.precision,
          "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
          "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")})


if __name__ == "__main__":
    main()
