"""Load on `cnnlab serve` over loopback: requests/s and p50 / p99 latency, with and without dynamic batching.

Two real servers (`python -m cnnlab serve BUNDLE`, one with batching, one with
``--no-batching``) serve the same CIFAR-size bundle (fixed random weights) on
127.0.0.1. An asyncio client (HTTP/1.1 written by hand over keep-alive connections:
it costs a fraction of httpx's CPU) keeps C requests in flight (C = 1, 8, 32),
each ``POST /v1/predict`` with one 32x32 PNG, for a bounded number of requests
per level (and a time cap). The two servers take turns at each level, so both
see the same machine load. Reported per line: requests/s, p50 / p99 ms,
errors (any non-200 or transport error), the server's CPU time per request
(user + system, from /proc: robust to other load on a shared machine, unlike
the wall-clock figures), and the server's resident memory
(VmRSS) after a warm-up and after its last level.

    .venv/bin/python benchmarks/serve_load.py [--model resnet20] [--requests 1000] [--levels 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's cnnlab, as the servers get it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (a cost that other load on the machine barely changes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_bundle(name: str, folder: Path) -> Path:
    """``name`` at CIFAR size (32x32x3) with fixed random weights, as a bundle."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from infer_speed import save_model_bundle

    return save_model_bundle(name, folder, (32, 32, 3))[0]


def start_server(bundle: Path, batching: bool, max_batch: int, threads: int | None,
                 engine: str = "auto") -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, "-m", "cnnlab", "serve", str(bundle), "--port", str(port), "--max-batch", str(max_batch),
               "--batching" if batching else "--no-batching", "--engine", engine]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read()}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            try:
                process.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
    process.kill()
    raise SystemExit("server did not start")


def multipart(png: bytes) -> tuple[bytes, str]:
    boundary = "cnnlabbench"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def load_level_procs(url: str, bodies: list[tuple[bytes, str]], concurrency: int, requests: int,
                     max_seconds: float, processes: int) -> dict:
    """``load_level`` split over ``processes`` client processes (C / P connections each), merged."""
    if processes <= 1 or concurrency < processes:
        return asyncio.run(load_level(url, bodies, concurrency, requests, max_seconds))
    import multiprocessing

    share = [(url, bodies, concurrency // processes + (k < concurrency % processes),
              requests // processes + (k < requests % processes), max_seconds, True) for k in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.starmap(_run_level, share)
    latencies = np.concatenate([p["latencies"] for p in parts])
    elapsed = max(p["seconds"] for p in parts)
    return _summary(latencies, sum(p["errors"] for p in parts), elapsed)


def _run_level(*args) -> dict:
    return asyncio.run(load_level(*args))


def _summary(latencies: np.ndarray, errors: int, elapsed: float) -> dict:
    lat = np.asarray(latencies) * 1e3
    return {"requests": len(lat), "errors": errors, "seconds": round(elapsed, 2),
            "requests_per_s": round(len(lat) / elapsed, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2)}


async def post_raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes) -> bool:
    """One keep-alive ``POST /v1/predict`` by hand: True if it came back 200 with one prediction.

    A hand-written HTTP/1.1 exchange costs the client a fraction of httpx's CPU, so that on a small
    machine the load generator leaves the cores to the server it measures."""
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    length = None
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ConnectionError("response without Content-Length")
    payload = await reader.readexactly(length)
    return status_line.split()[1:2] == [b"200"] and len(json.loads(payload)["predictions"]) == 1


async def load_level(url: str, bodies: list[tuple[bytes, str]], concurrency: int, requests: int,
                     max_seconds: float, raw: bool = False) -> dict:
    """C connections, each sending its next request when the last one is answered, until ``requests``
    have been sent or ``max_seconds`` have passed."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    prepared = [(f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n").encode() for body, ctype in bodies]
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + max_seconds

    async def worker(k: int) -> None:
        nonlocal errors, sent
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while sent < requests and time.perf_counter() < deadline:
                index = (sent + k) % len(bodies)
                sent += 1
                start = time.perf_counter()
                try:
                    ok = await asyncio.wait_for(post_raw(reader, writer, prepared[index], bodies[index][0]), 60)
                except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                    ok = False
                latencies.append(time.perf_counter() - start)
                if not ok:
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - start
    if raw:
        return {"latencies": np.array(latencies), "errors": errors, "seconds": elapsed}
    return _summary(np.array(latencies), errors, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet20", help="a zoo model, built at CIFAR size (32x32x3)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per level and server")
    parser.add_argument("--levels", default="1,8,32", help="concurrent clients")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-seconds", type=float, default=120, help="time cap per level")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the servers")
    parser.add_argument("--engine", default="auto", help="auto (ONNX Runtime), onnxruntime or torch")
    parser.add_argument("--client-processes", type=int, default=1,
                        help="split the clients over this many processes (one Python client cannot keep 32 in flight)")
    args = parser.parse_args()
    import httpx
    from PIL import Image

    rng = np.random.default_rng(0)
    bodies = []
    for _ in range(16):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="PNG")
        bodies.append(multipart(buffer.getvalue()))
    levels = [int(v) for v in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="cnnlab-serve-load-") as tmp:
        bundle = make_bundle(args.model, Path(tmp) / "bundle")
        if args.engine != "torch":  # export once, beside the bundle: both servers reuse it (same memory story)
            from cnnlab.serve.export import export_onnx

            export_onnx(bundle, bundle / "model.onnx")
        servers = {}
        for batching in (True, False):
            servers[batching] = start_server(bundle, batching, args.max_batch, args.threads, args.engine)
        try:
            memory = {}
            for batching, (process, url) in servers.items():
                # warm-up at the highest level: every pool thread (and its malloc arena) exists before "before"
                asyncio.run(load_level(url, bodies, max(levels), 400, 60))
                memory[batching] = rss_mb(process.pid)
            totals = {True: 0, False: 0}
            errors = {True: 0, False: 0}
            for concurrency in levels:
                for batching, (process, url) in servers.items():  # interleaved: same load for both
                    cpu = cpu_seconds(process.pid)
                    card = httpx.get(url + "/v1/model").json()
                    row = load_level_procs(url, bodies, concurrency, args.requests, args.max_seconds,
                                           args.client_processes)
                    after = httpx.get(url + "/v1/model").json()
                    if batching:
                        passes = after["forward_passes"] - card["forward_passes"]
                        row["mean_batch"] = round((after["images_served"] - card["images_served"]) / max(passes, 1), 2)
                    row["server_cpu_ms_per_request"] = round(1e3 * (cpu_seconds(process.pid) - cpu) / max(row["requests"], 1), 2)
                    totals[batching] += row["requests"]
                    errors[batching] += row["errors"]
                    row.update(model=args.model, engine=args.engine, client_processes=args.client_processes,
                               batching=batching, clients=concurrency,
                               load_avg_1m=round(os.getloadavg()[0], 2))
                    print(json.dumps(row), flush=True)
            for batching, (process, url) in servers.items():
                after = rss_mb(process.pid)
                print(json.dumps({"model": args.model, "batching": batching, "total_requests": totals[batching],
                                  "total_errors": errors[batching], "rss_mb_before": round(memory[batching], 1),
                                  "rss_mb_after": round(after, 1),
                                  "rss_change_pct": round(100 * (after - memory[batching]) / memory[batching], 1)}),
                      flush=True)
        finally:
            for process, _ in servers.values():
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


if __name__ == "__main__":
    main()
