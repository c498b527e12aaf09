"""Template matching and image filtering speed: cnnlab.ops against OpenCV on the same machine.

Prints one JSON line per measurement (median and best of N runs, milliseconds).

    .venv/bin/python benchmarks/match_template.py [--repeats 20] [--quick]

Peers: cv2.matchTemplate(TM_CCOEFF_NORMED) and cv2.filter2D when
opencv-python-headless is installed (the ``dev`` extra), else skipped.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from cnnlab.ops import correlate2d, match_template
from cnnlab.ops.kernels import gaussian
from cnnlab.ops.lab import lab_picture

try:
    import cv2
except ImportError:  # the peer is optional
    cv2 = None


def _time(function: Callable[[], object], repeats: int) -> tuple[float, float]:
    function()  # warm-up (FFT plans, allocations)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        runs.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(runs), min(runs)


def _emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="only the 512x512 / 64x64 gray case")
    args = parser.parse_args()
    machine = {"machine": platform.machine(), "cpu_count": torch.get_num_threads(), "python": platform.python_version()}

    cases = [(512, 64, False)] if args.quick else [(512, 64, False), (512, 64, True), (1024, 64, False), (512, 16, False)]
    for size, tsize, colour in cases:
        photo = lab_picture(size)
        if not colour:
            photo = photo @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        photo = np.ascontiguousarray(photo, dtype=np.float32)
        top, left = size // 3, size // 2
        template = photo[top : top + tsize, left : left + tsize].copy()
        _, (x, y, _) = match_template(photo, template)
        assert (x, y) == (left, top), "benchmark input no longer finds its own crop"
        shape = f"{size}x{size}x3" if colour else f"{size}x{size}"
        peers: list[tuple[str, Callable[[], object]]] = [("cnnlab.ops.match_template", lambda: match_template(photo, template))]
        if cv2 is not None:
            peers.append(("cv2.matchTemplate", lambda: cv2.matchTemplate(photo, template, cv2.TM_CCOEFF_NORMED)))
        for name, function in peers:
            median, best = _time(function, args.repeats)
            _emit(bench="match_template", impl=name, image=shape, template=f"{tsize}x{tsize}", median_ms=round(median, 2), best_ms=round(best, 2), repeats=args.repeats, **machine)

    if args.quick:
        return
    photo = np.ascontiguousarray(lab_picture(512), dtype=np.float32)
    kernel = gaussian(5, 1.0).astype(np.float32)
    peers = [("cnnlab.ops.correlate2d", lambda: correlate2d(photo, kernel))]
    if cv2 is not None:
        peers.append(("cv2.filter2D", lambda: cv2.filter2D(photo, -1, kernel, borderType=cv2.BORDER_REFLECT_101)))
    for name, function in peers:
        median, best = _time(function, args.repeats)
        _emit(bench="filter", impl=name, image="512x512x3", kernel="5x5", median_ms=round(median, 2), best_ms=round(best, 2), repeats=args.repeats, **machine)


if __name__ == "__main__":
    main()
