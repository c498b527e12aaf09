"""Training speed of cnnlab's trainer against a plain PyTorch loop and Keras 3, in one run.

For each case (model x data set x batch size) three peers train the same
architecture with the same batch size, optimiser (SGD, momentum 0.9, constant
learning rate), data and number of steps:

- ``cnnlab``: the public :class:`cnnlab.train.trainer.Trainer` built exactly as
  ``cnnlab train`` / ``cnnlab.fit`` builds it (default callbacks: CSVLogger,
  TerminateOnNaN, ModelCheckpoint of the best epoch; a state file every 500 steps
  and at every epoch end; the final bundle; progress in quiet mode; training
  loss and accuracy), fed by ``cnnlab.data.BatchLoader``;
- ``plain``: a hand-written loop over tensors in memory (``model(x)``,
  ``F.cross_entropy``, ``loss.backward()``, ``opt.step()``, training loss and
  accuracy summed on the device) on the SAME model class from the zoo, with its
  final softmax replaced by an identity;
- ``keras``: Keras 3 on TensorFlow-CPU, ``model.fit`` one epoch at a time in a
  peer process (``_keras_peer.py``) inside its own virtual environment, made on
  first use.

Epochs are interleaved (cnnlab, plain, keras, cnnlab, ...) so that machine noise
hits all three alike. One timed epoch is what a user waits for: the training pass
plus the validation pass (and, for cnnlab, its callbacks and checkpoints).
images/s = training images / epoch seconds.

Prints one JSON line per case (stdout); progress goes to stderr.

    CNNLAB_DATA=/tmp/cnnlab-data .venv/bin/python benchmarks/train_speed.py \\
        --cases mnist_3conv,fashion_mnist_practice --batch-sizes 32,128 --epochs 1
    .venv/bin/python benchmarks/train_speed.py --machine       # matmul GFLOP/s, FLOPs per image
    .venv/bin/python benchmarks/train_speed.py --profile resnet20 --batch-sizes 128 --train-limit 2048
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
PEER = Path(__file__).resolve().parent / "_keras_peer.py"

# case name -> (zoo model, data set, learning rate)
CASES = {
    "mnist_3conv": ("mnist_3conv", "mnist", 0.01),
    "fashion_mnist_practice": ("fashion_mnist_practice", "fashion-mnist", 0.01),
    "resnet20": ("resnet20", "cifar10", 0.05),
}


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ data


def load_sets(data: str, root: str, train_limit: int, val_limit: int):
    """(train ImageSet, validation ImageSet = the test split), optionally a fixed random subset."""
    from cnnlab.data.sources import open_dataset

    train = open_dataset(data, split="train", root=root)
    val = open_dataset(data, split="test", root=root)
    if train_limit and train_limit < len(train):
        train = train.subset(np.sort(np.random.default_rng(0).permutation(len(train))[:train_limit]))
    if val_limit and val_limit < len(val):
        val = val.subset(np.sort(np.random.default_rng(1).permutation(len(val))[:val_limit]))
    return train, val


def as_arrays(imageset) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(imageset.images), np.asarray(imageset.targets, dtype=np.int64)


# ---------------------------------------------------------------------------- models


def make_model(name: str, shape: tuple[int, int, int], classes: int, seed: int = 0) -> nn.Module:
    from cnnlab.models import create

    torch.manual_seed(seed)
    return create(name, num_classes=classes, input_shape=shape)


def strip_output_activation(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """Replace the model's final softmax module by an identity: a plain user trains on logits."""
    from cnnlab.inference.head import find_output_head

    head = find_output_head(model, example)
    if head.module is None:
        return model
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if child is head.module:
                setattr(parent, child_name, nn.Identity())
                return model
    raise RuntimeError("output activation not found among the model's children")


# ---------------------------------------------------------------------------- cnnlab


class CnnlabPeer:
    """The trainer as ``cnnlab train`` builds it; ``epoch()`` trains one more epoch via ``fit``."""

    def __init__(self, model_name: str, train_set, val_set, batch_size: int, lr: float, device: torch.device,
                 run_dir: Path, precision: str = "auto", compile: bool = False) -> None:
        from cnnlab.data.loader import BatchLoader, make_preprocessing
        from cnnlab.train import api
        from cnnlab.train import config as cfg

        exp = cfg.load_experiment(None, {
            "data.source": "benchmark", "model": model_name, "batch_size": batch_size, "seed": 0,
            "optimizer.name": "sgd", "optimizer.lr": lr, "optimizer.momentum": 0.9, "out": str(run_dir),
            "device": device.type, "precision": precision, "compile": compile,
        })
        classes = len(train_set.classes)
        module, arch, described = api.build_model(model_name, {}, input_shape=train_set.image_shape, outputs=classes,
                                                  activation="softmax", seed=0)
        preprocessing = make_preprocessing(train_set)
        self.train = BatchLoader(train_set, batch_size, shuffle=True, seed=0, device=device, preprocessing=preprocessing)
        self.val = BatchLoader(val_set, max(batch_size, 256), shuffle=False, device=device, preprocessing=preprocessing)
        head = api.check_model_output(module, self.train, "classification", classes, described)
        metrics = ["accuracy"]  # the same work as the other peers: training loss and accuracy
        run_dir.mkdir(parents=True, exist_ok=True)
        self.trainer = api._make_trainer(exp, module, head, self.train, self.val, train_set,
                                         api.default_loss("classification", head), metrics, run_dir, device, 0,
                                         arch, preprocessing, "classification")
        self.images = len(train_set)

    def run(self, epochs: int, between) -> list[dict[str, float]]:
        """One ``fit(epochs=...)`` call, as a user makes it; ``between(epoch)`` runs the other
        peers' epochs from a last callback, and its time is taken out of cnnlab's."""
        from cnnlab.train.callbacks import Callback

        marks = {"start": 0.0, "outside": 0.0}
        results: list[dict[str, float]] = []

        class Interleave(Callback):
            def on_epoch_end(self, trainer, epoch, logs) -> None:
                now = time.perf_counter()
                results.append({"seconds": now - marks["start"], "images": self_images, "loss": logs["loss"],
                                "val_accuracy": logs["val_accuracy"]})
                between(epoch)
                marks["start"] = time.perf_counter()

        self_images = self.images
        self.trainer.callbacks.append(Interleave())  # last: checkpoints and logs count as cnnlab's time
        marks["start"] = time.perf_counter()
        self.trainer.fit(self.train, self.val, epochs=epochs)
        results[-1]["seconds"] += time.perf_counter() - marks["start"]  # the end of the run: final state, bundle
        return results


# ----------------------------------------------------------------------------- plain


class PlainPeer:
    """A competent user's loop: tensors in memory, model(x), loss.backward(), opt.step()."""

    def __init__(self, model_name: str, train_set, val_set, batch_size: int, lr: float, device: torch.device,
                 channels_last: bool = True, bf16: bool = False, compile: bool = False) -> None:
        x, y = as_arrays(train_set)
        xv, yv = as_arrays(val_set)
        # (N, H, W, C) uint8 -> (N, C, H, W) float in [0, 1], NCHW-contiguous.
        to_nchw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous().float().div(255.0)  # noqa: E731
        self.device = device
        self.cuda = device.type == "cuda"
        self.bf16 = bf16
        self.x, self.y = to_nchw(x).to(device), torch.from_numpy(y).to(device)
        self.xv, self.yv = to_nchw(xv).to(device), torch.from_numpy(yv).to(device)
        model = make_model(model_name, train_set.image_shape, len(train_set.classes))
        # Channels-last weights and batches (also what the trainer does): on this CPU the
        # faster layout for every case; --plain-nchw measures the default NCHW layout instead.
        self.channels_last = channels_last
        self.model = strip_output_activation(model, self.x[:2].cpu()).to(device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9)
        # --compile: the same switch as cnnlab's (torch.compile of the model, Inductor's defaults).
        self.forward = torch.compile(self.model) if compile else self.model
        self.batch_size, self.val_batch = batch_size, max(batch_size, 256)
        self.generator = torch.Generator().manual_seed(0)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def epoch(self) -> dict[str, float]:
        start = time.perf_counter()
        self.model.train()
        order = torch.randperm(len(self.x), generator=self.generator).to(self.device)
        total = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        for i in range(0, len(order), self.batch_size):
            index = order[i:i + self.batch_size]
            xb, yb = self.x[index], self.y[index]
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                out = self.forward(xb)
            loss = F.cross_entropy(out.float(), yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.detach() * len(index)
            correct += (out.detach().argmax(1) == yb).sum()  # training accuracy, as Keras and cnnlab report
        accuracy = self.evaluate()
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "images": len(self.x), "loss": float(total) / len(self.x),
                "accuracy": int(correct) / len(self.x), "val_accuracy": accuracy}

    @torch.inference_mode()
    def evaluate(self) -> float:
        self.model.eval()
        correct = 0
        for i in range(0, len(self.xv), self.val_batch):
            xb = self.xv[i:i + self.val_batch]
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                correct += int((self.forward(xb).argmax(1) == self.yv[i:i + self.val_batch]).sum())
        return correct / len(self.xv)


# ----------------------------------------------------------------------------- keras


def ensure_keras_venv(venv: Path) -> Path:
    """The Keras venv's python; made with ``python3 -m venv`` + ``pip install tensorflow-cpu keras`` if absent."""
    python = venv / "bin" / "python"
    if python.exists():
        return python
    log(f"creating {venv} (tensorflow-cpu + keras; a few minutes, once)")
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "tensorflow-cpu", "keras"], check=True)
    return python


class KerasPeer:
    """``_keras_peer.py`` in the Keras venv, one ``model.fit`` epoch per request (JSON lines)."""

    def __init__(self, python: Path, model_name: str, train_set, val_set, batch_size: int, lr: float,
                 workdir: Path, precision: str = "fp32") -> None:
        x, y = as_arrays(train_set)
        xv, yv = as_arrays(val_set)
        data = workdir / "keras-data.npz"
        np.savez(data, x_train=x, y_train=y, x_val=xv, y_val=yv)
        self.process = subprocess.Popen(
            [str(python), str(PEER), str(data), model_name, str(batch_size), str(lr), str(max(batch_size, 256)),
             precision],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        ready = self._read()
        self.params = ready.get("params")

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Keras peer exited (see its stderr above)")
        return json.loads(line)

    def epoch(self) -> dict[str, float]:
        self.process.stdin.write(json.dumps({"cmd": "epoch"}) + "\n")
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)


# ------------------------------------------------------------------------------ runs


def warm_up(model_name: str, train_set, val_set, batch_size: int, device: torch.device, bf16: bool = False) -> None:
    """Steps of a throwaway model at every batch shape the epochs will see (full and last partial
    batches, training and validation): oneDNN / cuDNN build their kernels outside the timed epochs."""
    model = make_model(model_name, train_set.image_shape, len(train_set.classes)).to(device)
    model = model.to(memory_format=torch.channels_last)  # as both torch peers run
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = np.ascontiguousarray(train_set.images[: max(batch_size, 256)])
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).to(device)
    x_all = x_all.contiguous(memory_format=torch.channels_last)
    val_batch = max(batch_size, 256)
    train_sizes = {batch_size, len(train_set) % batch_size} - {0}
    val_sizes = {min(val_batch, len(val_set)), len(val_set) % val_batch} - {0}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 or device.type == "cuda")
    for size in sorted(train_sizes):
        x = x_all[:size]
        y = torch.zeros(len(x), dtype=torch.long, device=device)
        for _ in range(3):
            with autocast:
                loss = F.cross_entropy(model(x).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        for size in sorted(val_sizes):
            for _ in range(2):
                with autocast:
                    model(x_all[:1].expand(size, *x_all.shape[1:]).contiguous(memory_format=torch.channels_last))
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_bf16(args: argparse.Namespace, device: torch.device) -> bool:
    """The plain loop runs at cnnlab's precision (the same work) unless --plain-precision says otherwise."""
    from cnnlab.train.api import MIXED_PRECISION
    from cnnlab.train.trainer import uses_bf16

    choice = args.precision if args.plain_precision == "same" else args.plain_precision
    return uses_bf16(MIXED_PRECISION[choice], device)


def run_case(case: str, batch_size: int, args: argparse.Namespace, keras_python: Path | None) -> dict:
    from cnnlab.train import api
    from cnnlab.train.trainer import uses_bf16
    model_name, data, lr = CASES[case]
    device = torch.device(args.device)
    train_set, val_set = load_sets(data, args.data_root, args.train_limit, args.val_limit)
    cnnlab_bf16 = uses_bf16(api.MIXED_PRECISION[args.precision], device)
    for bf16 in {plain_bf16(args, device), cnnlab_bf16}:
        warm_up(model_name, train_set, val_set, batch_size, device, bf16)
    with tempfile.TemporaryDirectory(prefix="cnnlab-train-speed-") as tmp:
        peers: dict[str, object] = {}
        if "cnnlab" in args.peers:
            peers["cnnlab"] = CnnlabPeer(model_name, train_set, val_set, batch_size, lr, device, Path(tmp) / "run",
                                         args.precision, args.compile)
        if "plain" in args.peers:
            peers["plain"] = PlainPeer(model_name, train_set, val_set, batch_size, lr, device, not args.plain_nchw,
                                       bf16=plain_bf16(args, device), compile=args.compile)
        if "keras" in args.peers and keras_python is not None:
            peers["keras"] = KerasPeer(keras_python, model_name, train_set, val_set, batch_size, lr, Path(tmp),
                                       args.keras_precision)
        epochs: dict[str, list[dict]] = {name: [] for name in peers}
        load_before = os.getloadavg()[0]

        def note(name: str, epoch: int, result: dict) -> None:
            epochs[name].append(result)
            log(f"{case} b{batch_size} epoch {epoch + 1} {name}: {result['seconds']:.2f}s "
                f"{result['images'] / result['seconds']:.0f} img/s val_acc {result['val_accuracy']:.4f}")

        def others(epoch: int) -> None:
            # The other peers' order turns every epoch, so that none always follows the same
            # peer (TensorFlow's thread pool, say, winding down after a Keras epoch).
            names = [name for name in peers if name != "cnnlab"]
            shift = epoch % len(names) if names else 0
            for name in names[shift:] + names[:shift]:
                note(name, epoch, peers[name].epoch())

        try:
            if "cnnlab" in peers:  # cnnlab's epoch k, then the others' epoch k, ...
                for epoch, result in enumerate(peers["cnnlab"].run(args.epochs, others)):
                    note("cnnlab", epoch, result)
            else:
                for epoch in range(args.epochs):
                    others(epoch)
        finally:
            if "keras" in peers:
                peers["keras"].close()
    rate = {name: sum(r["images"] for r in rows) / sum(r["seconds"] for r in rows) for name, rows in epochs.items()}
    out = {
        "case": case, "model": model_name, "data": data, "batch_size": batch_size, "epochs": args.epochs,
        "train_images": len(train_set), "val_images": len(val_set), "device": str(device),
        "torch_threads": torch.get_num_threads(), "compile": args.compile, "cnnlab_precision": args.precision, "cnnlab_bf16": cnnlab_bf16, "plain_bf16": plain_bf16(args, device),
        "keras_precision": args.keras_precision if "keras" in peers else None, "plain_layout": "nchw" if args.plain_nchw else "channels_last",
        "images_per_s": {k: round(v, 1) for k, v in rate.items()},
        "val_accuracy": {k: round(rows[-1]["val_accuracy"], 4) for k, rows in epochs.items()},
        "epoch_seconds": {k: [round(r["seconds"], 3) for r in rows] for k, rows in epochs.items()},
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    # The fastest epoch of each: robust to a burst of load from other processes.
    best = {name: max(r["images"] / r["seconds"] for r in rows) for name, rows in epochs.items()}
    out["images_per_s_best_epoch"] = {k: round(v, 1) for k, v in best.items()}
    # Paired epochs (cnnlab's epoch k and the others' epoch k ran back to back): the median
    # of the per-epoch ratios; with several epochs, the figure least moved by load bursts.
    for other in ("plain", "keras"):
        if "cnnlab" in epochs and other in epochs:
            pairs = [(a["images"] / a["seconds"]) / (b["images"] / b["seconds"])
                     for a, b in zip(epochs["cnnlab"], epochs[other])]
            out[f"ratio_cnnlab_{other}_median_paired_epoch"] = round(float(np.median(pairs)), 3)
    for other in ("plain", "keras"):
        if "cnnlab" in rate and other in rate:
            out[f"ratio_cnnlab_{other}"] = round(rate["cnnlab"] / rate[other], 3)
            out[f"ratio_cnnlab_{other}_best_epoch"] = round(best["cnnlab"] / best[other], 3)
    return out


# ------------------------------------------------------------------ machine, profile


def matmul_gflops(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of an n x n x n torch matmul in ``dtype`` (median of ``repeats``)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / float(np.median(times)) / 1e9


def model_flops(model_name: str, shape: tuple[int, int, int]) -> dict[str, float]:
    """Forward and forward+backward FLOPs per image (torch's FlopCounterMode: convs, matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = make_model(model_name, shape, 10)
    x = torch.randn(8, shape[2], shape[0], shape[1])
    with FlopCounterMode(display=False) as counter:
        model(x)
    forward = counter.get_total_flops() / 8
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return {"forward_flops": forward, "train_flops": counter.get_total_flops() / 8}


def machine_report() -> None:
    shapes = {"mnist_3conv": (28, 28, 1), "fashion_mnist_practice": (28, 28, 1), "resnet20": (32, 32, 3)}
    for dtype in (torch.float32, torch.bfloat16):
        print(json.dumps({"measure": f"matmul_{str(dtype).split('.')[-1]}", "n": 2048,
                          "threads": torch.get_num_threads(), "gflops": round(matmul_gflops(dtype=dtype), 1),
                          "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)
    for name, shape in shapes.items():
        print(json.dumps({"measure": "flops_per_image", "model": name,
                          **{k: round(v) for k, v in model_flops(name, shape).items()}}), flush=True)


# Profiler op name -> where its time belongs (first match wins; self CPU time).
OP_GROUPS = (
    ("convolution (oneDNN)", ("convolution", "mkldnn_conv", "conv2d")),
    ("matmul / linear (oneDNN)", ("addmm", "mm", "linear")),
    ("pooling", ("pool",)),
    ("activation", ("relu", "threshold", "clamp")),
    ("batch norm", ("batch_norm",)),
    ("optimizer", ("_foreach", "sgd", "adam")),
    ("loss", ("cross_entropy", "log_softmax", "nll_loss")),
    ("bf16 casts, copies, layout", ("to_copy", "copy_", "_to_copy", "contiguous", "clone", "to")),
    ("gather / index", ("index",)),
)


def op_group(name: str) -> str:
    key = name.lower()
    for group, needles in OP_GROUPS:
        if any(needle in key for needle in needles):
            return group
    return "other ops"


def profile(case: str, batch_size: int, args: argparse.Namespace) -> None:
    """torch.profiler over one cnnlab epoch and one plain epoch: where the time goes.

    Prints the profiler's table per peer (stderr) and one JSON line per peer: the
    epoch's seconds and the share of self CPU time of each op group (OP_GROUPS)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    from cnnlab.train import api
    from cnnlab.train.trainer import uses_bf16

    model_name, data, lr = CASES[case]
    device = torch.device(args.device)
    train_set, val_set = load_sets(data, args.data_root, args.train_limit, args.val_limit)
    cnnlab_bf16 = uses_bf16(api.MIXED_PRECISION[args.precision], device)
    for bf16 in {plain_bf16(args, device), cnnlab_bf16}:
        warm_up(model_name, train_set, val_set, batch_size, device, bf16)
    with tempfile.TemporaryDirectory(prefix="cnnlab-profile-") as tmp:
        peers = {"cnnlab": CnnlabPeer(model_name, train_set, val_set, batch_size, lr, device, Path(tmp) / "run",
                                      args.precision),
                 "plain": PlainPeer(model_name, train_set, val_set, batch_size, lr, device,
                                    bf16=plain_bf16(args, device))}
        for name, peer in peers.items():
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                result = peer.run(1, lambda epoch: None)[0] if name == "cnnlab" else peer.epoch()
            log(f"== {name}: {result['seconds']:.2f}s")
            log(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile_rows))
            groups: dict[str, float] = {}
            for event in prof.key_averages():
                groups[op_group(event.key)] = groups.get(op_group(event.key), 0.0) + event.self_cpu_time_total
            total = sum(groups.values())
            print(json.dumps({"profile": case, "peer": name, "batch_size": batch_size, "bf16": name == "cnnlab"
                              and cnnlab_bf16 or name == "plain" and plain_bf16(args, device),
                              "epoch_seconds": round(result["seconds"], 3),
                              "self_cpu_share": {k: round(v / total, 3) for k, v in
                                                 sorted(groups.items(), key=lambda kv: -kv[1])}}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--batch-sizes", default="32,128")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=0, help="train on a fixed random subset of this size")
    parser.add_argument("--val-limit", type=int, default=0, help="validate on a fixed random subset of this size")
    parser.add_argument("--peers", default="cnnlab,plain,keras")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="cnnlab's precision (auto: bf16 on CUDA and on CPUs with native bf16, else fp32)")
    parser.add_argument("--plain-precision", default="same", choices=["same", "auto", "fp32", "bf16"],
                        help="the plain loop's precision (same: cnnlab's)")
    parser.add_argument("--keras-precision", default="fp32", choices=["fp32", "bf16"],
                        help="Keras's precision: fp32 (its default) or bf16 (the mixed_bfloat16 policy)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile both torch peers (cnnlab's `compile: true`; the first epoch includes "
                             "the compile time)")
    parser.add_argument("--plain-nchw", action="store_true", help="plain loop in NCHW instead of channels-last")
    parser.add_argument("--data-root", default=os.environ.get("CNNLAB_BENCH_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--keras-venv", default=str(REPO / ".venv-keras"))
    parser.add_argument("--machine", action="store_true", help="print matmul GFLOP/s and FLOPs per image, then exit")
    parser.add_argument("--profile", metavar="CASE", help="profile one cnnlab and one plain epoch of CASE")
    parser.add_argument("--profile-rows", type=int, default=25)
    args = parser.parse_args()
    args.peers = args.peers.split(",")
    if args.machine:
        machine_report()
        return
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    if args.profile:
        profile(args.profile, batch_sizes[0], args)
        return
    keras_python = ensure_keras_venv(Path(args.keras_venv)) if "keras" in args.peers else None
    for case in args.cases.split(","):
        for batch_size in batch_sizes:
            print(json.dumps(run_case(case, batch_size, args, keras_python)), flush=True)


if __name__ == "__main__":
    main()
