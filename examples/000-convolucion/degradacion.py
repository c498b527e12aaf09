# %% [markdown]
# # El problema de la degradación (§4.2): plain-20 / plain-56 frente a ResNet-20 / ResNet-56 en CIFAR-10
# The notes' ResNet section reproduces He et al.'s figure (2015, Fig. 1 / Fig. 6): without shortcuts the
# 56-layer net has a *higher training error* than the 20-layer one (not overfitting: it is harder to
# optimise), while with shortcuts the deeper net is the better one. This script trains the four nets on the
# same seeded CIFAR-10 subset with one recipe (He et al.'s: SGD momentum 0.9, weight decay 1e-4, batch 128,
# learning rate 0.1, horizontal flips and 4-pixel crops; a cosine decay instead of their steps at 32k / 48k
# iterations, because the run is short), evaluates the test error after every epoch on a fixed, class-balanced
# subset of the CIFAR-10 test split, and writes `degradacion.csv` (model, epoch, train / test error) and
# `degradacion.png` (thin lines: training error, bold: test error; plain nets left, ResNets right).
#
# `python examples/000-convolucion/degradacion.py ../shared/data [--images N] [--test-images N] [--epochs E]
# [--width W] [--out DIR]`: DATA is the folder holding `cifar10-jpeg.tar.gz` (or the original
# `cifar-10-python.tar.gz`, or the tarball / an extracted class-per-folder tree itself); else $CNNLAB_DATA.
#
# Reduced by default, so that it runs in about half an hour on a 2-core CPU: width 8 (stages of 8 / 16 / 32
# filters instead of He et al.'s 16 / 32 / 64: a quarter of the weights, the same depth, which is what the
# experiment is about), 10,000 training images (1,000 per class) instead of 50,000, 2,000 test images,
# 15 epochs instead of ~180 (about 1,200 SGD steps instead of 64,000). Sizes chosen from one-batch timings:
# at width 8 a 20-layer net trains about 1.5x faster than at width 16 (small convolutions use the cores less
# well), a 56-layer one about 3x slower than a 20-layer one. The error levels are therefore well above the
# paper's; what should show is the ordering of the training errors: plain-56 above plain-20 (in a 2-epoch
# probe already), and ResNet-56 catching up with ResNet-20 (deeper nets start slower) - the final table says
# whether it did within the run.
# The full experiment, on a GPU: `--width 16 --images 50000 --test-images 10000 --epochs 160`.
# $CNNLAB_EXAMPLES_SMOKE=1: 50 training / 20 test images, width 4, one epoch (the examples' test).

# %%
import argparse
import csv
import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

import cnnlab
from cnnlab.data import open_dataset

smoke = os.environ.get("CNNLAB_EXAMPLES_SMOKE", "0") not in ("", "0")
parser = argparse.ArgumentParser(description="He et al.'s degradation experiment: plain-20/56 vs ResNet-20/56")
parser.add_argument("data", nargs="?", default=os.environ.get("CNNLAB_DATA", "."),
                    help="data root holding cifar10-jpeg.tar.gz (or the tarball / folder tree itself)")
parser.add_argument("--images", type=int, default=50 if smoke else 10_000, help="training images (class-balanced)")
parser.add_argument("--test-images", type=int, default=20 if smoke else 2_000, help="test images scored each epoch")
parser.add_argument("--epochs", type=int, default=1 if smoke else 15)
parser.add_argument("--width", type=int, default=4 if smoke else 8, help="first stage's filters (He et al.: 16)")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--out", default="degradacion", help="output folder (runs, subset, CSV, PNG)")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
MODELS = ["plain20", "plain56", "resnet20", "resnet56"]
out = Path(args.out)

# %% [markdown]
# ## The same seeded, class-balanced subset for every net
# Written once as class-per-folder trees (`OUT/data/train-N-seedS`, `OUT/data/test-M-seedS`), which
# `cnnlab.fit` reads like any image folder; the test subset is the validation set, scored after every epoch.

# %%
given = Path(args.data)
if given.name.endswith((".tar.gz", ".tgz", ".tar")) or (given / "train").is_dir():
    source, root = str(given), None  # the tarball or the extracted tree itself
else:
    source, root = "cifar10", str(given)  # a data root: cifar10-jpeg.tar.gz, cifar10/ ... inside
subset = out / "data"
folders = {}
for split, count in (("train", args.images), ("test", args.test_images)):
    folder = folders[split] = subset / f"{split}-{count}-seed{args.seed}"
    if folder.is_dir():  # an earlier run of the same command: the same subset is already there
        continue
    images = open_dataset(source, split=split, root=root)
    per_class = count // len(images.classes)
    smallest = int(np.bincount(images.targets, minlength=len(images.classes)).min())
    if not 1 <= per_class <= smallest:
        classes = len(images.classes)
        parser.error(f"--{'images' if split == 'train' else 'test-images'} {count}: give {classes} to "
                     f"{smallest * classes} ({classes} classes, {smallest} {split} images in the smallest)")
    partial = folder.with_name(folder.name + ".partial")
    rng = np.random.default_rng([args.seed, int(split == "test")])  # each subset its own stream: rerunnable alone
    for label, name in enumerate(images.classes):
        chosen = rng.choice(np.flatnonzero(images.targets == label), per_class, replace=False)
        (partial / name).mkdir(parents=True, exist_ok=True)
        for index in sorted(chosen):
            Image.fromarray(np.asarray(images.images[index])).save(partial / name / f"{index:05d}.png")
    os.replace(partial, folder)
    print(f"wrote {per_class * len(images.classes)} {split} images ({per_class} per class) to {folder}")

# %% [markdown]
# ## Training: one recipe, four nets
# Training error = 1 - the epoch's running training accuracy (on augmented images, as the paper's curves);
# test error = 1 - the accuracy on the test subset at the epoch's end.

# %%
recipe = {
    "model_options": {"width": args.width},
    "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4},
    "schedule": {"name": "cosine"},
    "augment": {"horizontal_flip": True, "crop_padding": 4},
}
rows = []
for name in MODELS:
    # One folder per net and setting: a rerun of the same command reuses the nets already trained.
    run = out / "runs" / f"{name}-w{args.width}-n{args.images}-e{args.epochs}-seed{args.seed}"
    started = time.perf_counter()
    done = len((run / "history.csv").read_text().splitlines()) - 1 if (run / "history.csv").is_file() else 0
    if not run.is_dir():
        cnnlab.fit(str(folders["train"]), name, out=run, data_root=root, verbose=0,
                   **{"data.val": str(folders["test"]), "data.val_split": 0}, **recipe)
    elif done < args.epochs:  # interrupted: go on from its last saved state
        cnnlab.fit(resume=run, verbose=0)
    with open(run / "history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    for line in history:
        rows.append({"model": name, "epoch": int(line["epoch"]) + 1,  # history.csv counts from 0
                     "train_error": round(1 - float(line["accuracy"]), 4),
                     "test_error": round(1 - float(line["val_accuracy"]), 4)})
    print(f"{name}: {len(history)} epochs in {time.perf_counter() - started:.0f} s")

# %%
table = io.StringIO()
writer = csv.DictWriter(table, fieldnames=["model", "epoch", "train_error", "test_error"], lineterminator="\n")
writer.writeheader()
writer.writerows(rows)
(out / "degradacion.csv.tmp").write_text(table.getvalue())
os.replace(out / "degradacion.csv.tmp", out / "degradacion.csv")
print(f"wrote {len(rows)} rows to {out / 'degradacion.csv'}")

# %% [markdown]
# ## He et al.'s figure: thin = training error, bold = test error

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

fig, panels = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
colors = {"20": "tab:orange", "56": "tab:red"}
for panel, family, title in ((panels[0], "plain", "plain networks"), (panels[1], "resnet", "ResNets")):
    for depth in ("20", "56"):
        mine = [r for r in rows if r["model"] == family + depth]
        epochs = [r["epoch"] for r in mine]
        label = f"{'plain' if family == 'plain' else 'ResNet'}-{depth}"
        panel.plot(epochs, [100 * r["train_error"] for r in mine], color=colors[depth], lw=0.9, ls="--",
                   label=f"{label} train")
        panel.plot(epochs, [100 * r["test_error"] for r in mine], color=colors[depth], lw=2.5, label=f"{label} test")
    panel.set(title=f"{title} (width {args.width}, {args.images:,} images)", xlabel="epoch")
    panel.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    panel.grid(alpha=0.3)
    panel.legend()
panels[0].set_ylabel("error (%)")
fig.tight_layout()
fig.savefig(out / "degradacion.tmp.png", dpi=120)
os.replace(out / "degradacion.tmp.png", out / "degradacion.png")
print(f"wrote {out / 'degradacion.png'}")

# %% [markdown]
# ## Final errors
# The degradation problem: plain-56's training error above plain-20's; with shortcuts, ResNet-56's at or
# below ResNet-20's.

# %%
last = {r["model"]: r for r in rows}  # rows run epoch by epoch: each net's final row wins
print(f"{'model':<10}{'train error':>13}{'test error':>12}")
for name in MODELS:
    print(f"{name:<10}{100 * last[name]['train_error']:>12.2f}%{100 * last[name]['test_error']:>11.2f}%")
print(f"deeper plain net trains worse: {last['plain56']['train_error'] > last['plain20']['train_error']}; "
      f"deeper ResNet trains better: {last['resnet56']['train_error'] <= last['resnet20']['train_error']}")
