"""Size and speed of the HTML report of a CIFAR-10-size run (issue 16: at most 5 MB, at most 30 s).

Trains a small net for one epoch on CIFAR-10 (``--data-root`` holds
``cifar10-jpeg.tar.gz``; 40,000 training / 10,000 validation images, plus the
10,000 test images the report evaluates too) without writing the report, then
writes it twice: in this process (imports warm) and as ``cnnlab report`` in a
fresh one (what a user waits for, imports included). Prints one JSON line per
measurement::

    CNNLAB_DATA=/tmp/cnnlab-data python benchmarks/report_speed.py --data-root ../shared/data
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL_NET = {
    "name": "small_cifar_net",
    "input_shape": [32, 32, 3],
    "layers": [
        {"type": "Conv2D", "filters": 16, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
        {"type": "Conv2D", "filters": 32, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
        {"type": "Conv2D", "filters": 64, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"},
        {"type": "GlobalAveragePooling2D"},
        {"type": "Dense", "units": 10, "activation": "softmax"},
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder holding cifar10-jpeg.tar.gz")
    parser.add_argument("--run", default=None, help="reuse this run folder (trained before) instead of training")
    args = parser.parse_args()

    from cnnlab.report import write_report
    from cnnlab.train.api import fit

    run = Path(args.run) if args.run else Path(tempfile.mkdtemp(prefix="report-bench-")) / "run"
    if not (run / "model.json").is_file():
        started = time.perf_counter()
        fit("cifar10", SMALL_NET, out=run, epochs=1, batch_size=128, verbose=0, data_root=args.data_root,
            report=False, **{"data.val_split": 0.2, "optimizer.lr": 0.003})
        print(json.dumps({"what": "train 1 epoch (setup)", "seconds": round(time.perf_counter() - started, 1),
                          "run": str(run)}), flush=True)
    started = time.perf_counter()
    path = write_report(run)
    warm = time.perf_counter() - started
    size = path.stat().st_size
    print(json.dumps({"what": "write_report, in process", "seconds": round(warm, 2), "bytes": size,
                      "megabytes": round(size / 2**20, 3)}), flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cnnlab", "report", str(run), "-o", str(run / "report-cli.html")],
                          capture_output=True, text=True)
    cold = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    size = (run / "report-cli.html").stat().st_size
    print(json.dumps({"what": "cnnlab report, fresh process", "seconds": round(cold, 2), "bytes": size,
                      "megabytes": round(size / 2**20, 3)}), flush=True)


if __name__ == "__main__":
    main()
