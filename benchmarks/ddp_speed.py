"""Time per epoch of `cnnlab train` as 1 process vs N processes (DDP, torch's launcher) on this machine.

Each round runs the same command once as one process (all cores' threads) and
once with ``--nproc N`` (``OMP_NUM_THREADS = cores // N`` each, gloo on the CPU
or NCCL on GPUs), interleaved so that machine noise hits both alike. The
per-process batch is ``--batch-size / N`` for the N-process run, so both train
the same global batch and see the same images per step. The time of an epoch is
the trainer's own ``epoch k/E - X.Xs`` line (training pass + validation +
checkpoints), the first epoch left out (warm-up). Prints one JSON line per run
and a summary line (stdout).

    CNNLAB_DATA=/tmp/cnnlab-data .venv/bin/python benchmarks/ddp_speed.py \\
        --data mnist --data-root ../shared/data --model mnist_3conv --batch-size 128 --epochs 3 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

EPOCH = re.compile(r"^epoch (\d+)/(\d+) - ([0-9.]+)s")


def run(args: argparse.Namespace, nproc: int, out: Path) -> list[float]:
    batch = args.batch_size // nproc
    model = [] if args.model == "auto" else ["--model", args.model]
    command = [sys.executable, "-m", "cnnlab", "train", args.data, *model, "--epochs", str(args.epochs),
               "--batch-size", str(batch), "--out", str(out), "--device", args.device, "--precision", args.precision,
               "--val-split", str(args.val_split), "-q"]
    if args.data_root:
        command += ["--data", args.data_root]
    if nproc > 1:
        command += ["--nproc", str(nproc)] + (["--sync-bn"] if args.sync_bn else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return [float(m.group(3)) for line in done.stdout.splitlines() if (m := EPOCH.match(line))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--model", default="mnist_3conv", help="a zoo name or spec; auto: the picked model")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch (split over the processes)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--val-split", type=float, default=0.1)
    parser.add_argument("--sync-bn", action="store_true", help="the N-process runs with --sync-bn (CUDA only)")
    args = parser.parse_args()
    times: dict[int, list[float]] = {1: [], args.nproc: []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for nproc in (1, args.nproc) if round_ % 2 == 0 else (args.nproc, 1):
                epochs = run(args, nproc, Path(tmp) / f"r{round_}-{nproc}")
                times[nproc] += epochs[1:]
                print(json.dumps({"processes": nproc, "round": round_, "epoch_seconds": epochs,
                                  "global_batch": args.batch_size, "model": args.model, "data": args.data,
                                  "device": args.device, "precision": args.precision,
                                  "cpu_count": os.cpu_count()}), flush=True)
    one, many = statistics.median(times[1]), statistics.median(times[args.nproc])
    print(json.dumps({"summary": True, "median_epoch_s_1": one, f"median_epoch_s_{args.nproc}": many,
                      "speedup": one / many}))


if __name__ == "__main__":
    main()
