"""Predict speed: cnnlab's loaded bundle vs plain PyTorch vs ONNX Runtime, batch 1 and 64 (CPU).

For each model, one set of weights is saved as a cnnlab bundle and then run by:

- ``cnnlab_tensor``: ``cnnlab.load(bundle).predict_tensor(x)`` (network + output
  activation on prepared float inputs);
- ``cnnlab_images``: ``cnnlab.load(bundle).predict(uint8 images)`` (the whole
  user path: preprocessing of in-memory images, network, probabilities);
- ``plain``: ``model.eval()`` under ``torch.inference_mode()``, ``model(x)`` (the
  zoo model as created: NCHW weights);
- ``onnxruntime``: the same model exported with ``torch.onnx.export`` (dynamic
  batch), run by an ``InferenceSession`` on the CPU, when onnx / onnxruntime are
  installed (``pip install onnx onnxruntime``); otherwise the line says so.
- ``cnnlab_onnx``: the bundle exported by ``cnnlab export`` (``cnnlab.serve.export_onnx``:
  preprocessing and softmax inside the graph) and run by ONNX Runtime on the same
  uint8 images as ``cnnlab_images`` (the whole user path of ``cnnlab predict model.onnx``
  and of ``cnnlab serve``), when the ``export`` extra is installed.

Batch 1: latency (median ms of many calls). Batch 64: images/s (median call).
One JSON line per model and peer.

    .venv/bin/python benchmarks/infer_speed.py [--models mnist_3conv,resnet20] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def timed_calls(fn, seconds: float, min_calls: int = 10) -> list[float]:
    """Seconds of each call of ``fn`` for about ``seconds`` (after 3 warm-up calls)."""
    for _ in range(3):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < min_calls or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def save_model_bundle(name: str, folder: Path,
                      shape: tuple[int, int, int] | None = None) -> tuple[Path, tuple[int, int, int]]:
    """A zoo model with fixed random weights saved as a bundle (softmax output), at ``shape`` or its own size."""
    from cnnlab.models import create, info
    from cnnlab.inference.bundle import save_bundle
    from cnnlab.inference.head import find_output_head

    shape = tuple(shape) if shape else info(name).input_shape
    torch.manual_seed(0)
    model = create(name, num_classes=10, input_shape=shape).eval()
    head = find_output_head(model, torch.rand(2, shape[2], shape[0], shape[1])).for_task("classification")
    meta = {
        "architecture": {"kind": "zoo", "config": model.config}, "task": "classification",
        "classes": [str(i) for i in range(10)], "input_shape": list(shape),
        "preprocessing": {"image_size": list(shape[:2]), "channels": shape[2], "resize": "bilinear-stretch",
                          "alpha": "white", "scale": 1 / 255, "mean": None, "std": None},
        "output": {"activation": head.activation, "in_model": head.module is not None, "units": 10},
        "metrics": {}, "epochs_trained": 0,
    }
    return save_bundle(folder, model, meta), shape


def onnx_session(model: torch.nn.Module, example: torch.Tensor, path: Path):
    """An onnxruntime CPU session of ``model`` (dynamic batch), or the reason there is none."""
    try:
        import onnxruntime as ort
    except ImportError as error:
        return None, f"onnxruntime not installed ({error})"
    try:
        torch.onnx.export(model, (example,), str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    except Exception as error:  # noqa: BLE001 - report any exporter failure as a result line
        return None, f"export failed: {type(error).__name__}: {str(error).splitlines()[0]}"
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the same cores as torch
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]), None


def cnnlab_onnx(loaded, path: Path):
    """``cnnlab export``'s model as an OnnxModel (intra-op threads = torch's), or the reason there is none."""
    try:
        from cnnlab.errors import CnnlabError
        from cnnlab.serve.export import export_onnx
        from cnnlab.serve.onnx_model import load_onnx

        export_onnx(loaded, path)
        return load_onnx(path, threads=torch.get_num_threads()), None
    except (ImportError, CnnlabError) as error:
        return None, f"cnnlab export unavailable: {str(error).splitlines()[0]}"


def bench_model(name: str, seconds: float) -> list[dict]:
    import cnnlab
    from cnnlab.models import create

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-infer-") as tmp:
        bundle, (h, w, c) = save_model_bundle(name, Path(tmp) / "bundle")
        loaded = cnnlab.load(bundle)
        torch.manual_seed(0)
        plain = create(name, num_classes=10, input_shape=(h, w, c))
        plain.load_state_dict(loaded.module.state_dict())
        plain.eval()
        rng = np.random.default_rng(0)
        images = {b: rng.integers(0, 256, (b, h, w, c) if c > 1 else (b, h, w), dtype=np.uint8) for b in (1, 64)}
        tensors = {b: torch.from_numpy(images[b].reshape(b, h, w, c)).permute(0, 3, 1, 2).float().div(255).contiguous()
                   for b in (1, 64)}

        def plain_call(x: torch.Tensor):
            with torch.inference_mode():
                return plain(x)

        session, why = onnx_session(plain, tensors[1], Path(tmp) / "model.onnx")
        peers = {
            "cnnlab_tensor": lambda b: loaded.predict_tensor(tensors[b]),
            "cnnlab_images": lambda b: loaded.predict(images[b]),
            "plain": lambda b: plain_call(tensors[b]),
        }
        if session is not None:
            peers["onnxruntime"] = lambda b: session.run(None, {"x": tensors[b].numpy()})
        exported, why_not = cnnlab_onnx(loaded, Path(tmp) / "cnnlab.onnx")
        nhwc = {b: images[b].reshape(b, h, w, c) for b in (1, 64)}
        if exported is not None:
            peers["cnnlab_onnx"] = lambda b: exported.run(nhwc[b])
        # Same answers before timing anything (cnnlab returns probabilities: compare those).
        ref = plain_call(tensors[64]).float()
        probs = loaded.head.probabilities(ref).numpy()
        ref = ref.numpy()
        agree = {"cnnlab_tensor": float(np.abs(loaded.predict_tensor(tensors[64]).numpy() - probs).max())}
        if session is not None:
            agree["onnxruntime"] = float(np.abs(session.run(None, {"x": tensors[64].numpy()})[0] - ref).max())
        if exported is not None:
            agree["cnnlab_onnx"] = float(np.abs(exported.run(nhwc[64]) - probs).max())
        for peer, call in peers.items():
            lat = timed_calls(lambda: call(1), seconds)
            thr = timed_calls(lambda: call(64), seconds, min_calls=5)
            rows.append({"model": name, "peer": peer, "batch1_latency_ms": round(1e3 * float(np.median(lat)), 3),
                         "batch64_images_per_s": round(64 / float(np.median(thr)), 1),
                         "max_abs_diff_vs_plain": agree.get(peer), "threads": torch.get_num_threads()})
        if session is None:
            rows.append({"model": name, "peer": "onnxruntime", "skipped": why})
        if exported is None:
            rows.append({"model": name, "peer": "cnnlab_onnx", "skipped": why_not})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mnist_3conv,fashion_mnist_practice,resnet20")
    parser.add_argument("--seconds", type=float, default=2.0, help="timing per peer and batch size")
    args = parser.parse_args()
    for name in args.models.split(","):
        for row in bench_model(name, args.seconds):
            row["load_avg_1m"] = round(os.getloadavg()[0], 2)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
