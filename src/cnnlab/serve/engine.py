"""What the server runs: a model behind one ``run(uint8 NHWC) -> outputs`` call, and dynamic batching.

``open_model(source)``: an ``.onnx`` file runs on ONNX Runtime; a run folder or
bundle is exported once to ``model.onnx`` beside it (reused while the bundle's
weights checksum and the cnnlab version match) and runs on ONNX Runtime when
the ``export`` extra is installed, else on eager torch. Heat maps always come
from the torch model, so a bare ``.onnx`` file serves predictions only.

:class:`Batcher` gathers concurrent requests into one forward pass, as
TorchServe does: a worker thread takes the first waiting request, then keeps
taking requests until ``max_batch`` images are gathered or ``max_wait_ms`` has
passed, runs them as one batch and hands each request its rows. It waits only
while other requests are on their way (received, not yet decoded), so a lone
request is not delayed.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError

CACHE_NAME = "model.onnx"


@dataclass
class Predictor:
    """A served model. ``run``: uint8 (N, H, W, C) -> (N, K) probabilities / (N, 1) values."""

    run: Callable[[np.ndarray], np.ndarray]
    engine: str  # "onnxruntime" | "torch"
    name: str
    task: str
    classes: list[str] | None
    input_shape: tuple[int, int, int]
    metrics: dict[str, Any]
    source: str
    torch_model: Any = None  # the LoadedModel, for heat maps
    notes: list[str] = field(default_factory=list)
    # Heat maps hook the torch module: they (and eager forwards of it) take turns.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def top_k(self, out: np.ndarray, k: int) -> list[dict[str, Any]]:
        """One row of outputs -> ``[{"class", "probability"}]`` best first (one sigmoid unit: 2 classes)."""
        names = self.classes or []
        row = np.asarray(out, dtype=np.float64).reshape(-1)
        if row.size == 1:
            p = float(row[0])
            pairs = [(names[1] if len(names) > 1 else "1", p), (names[0] if names else "0", 1.0 - p)]
            pairs.sort(key=lambda item: -item[1])
        else:
            order = np.argsort(-row, kind="stable")
            pairs = [(names[j] if j < len(names) else str(j), float(row[j])) for j in order]
        return [{"class": c, "probability": p} for c, p in pairs[:max(1, k)]]


def _onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))


def _from_onnx(model: Any, source: str, torch_model: Any = None, notes: list[str] | None = None) -> Predictor:
    return Predictor(model.run, "onnxruntime", model.name, model.task, model.classes, model.input_shape,
                     model.metrics, source, torch_model, notes or [])


def torch_runner(loaded: Any, lock: threading.Lock) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 NHWC -> outputs with the bundle's own preprocessing, one forward at a time."""
    import torch

    from cnnlab.data.loader import normalize

    def run(batch: np.ndarray) -> np.ndarray:
        x = normalize(torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2), loaded.preprocessing)
        with lock, torch.no_grad():
            out = loaded.predict_tensor(x).float().numpy()
        return out.reshape(len(batch), -1)

    return run


def _cached_export(loaded: Any, folder: Path, notes: list[str]) -> Any:
    """The bundle's ``model.onnx`` (exported now if missing or stale), as an OnnxModel."""
    from cnnlab import __version__
    from cnnlab.serve.export import META_PREFIX, export_onnx, session_from
    from cnnlab.serve.onnx_model import OnnxModel, load_onnx

    # No spinning: between requests ORT's idle threads would burn the cores the HTTP side needs
    # (server CPU per request 5-9 ms -> 2.7-3.4 ms for resnet20 on 2 cores, benchmarks/serve_load.py).
    cached = folder / CACHE_NAME
    sha = str(loaded.meta.get("weights_sha256") or "")
    if cached.is_file():
        try:
            model = load_onnx(cached, spin=False)
            if sha and model.metadata.get(f"{META_PREFIX}weights_sha256") == sha and model.version == __version__:
                notes.append(f"ONNX model reused from {cached}")
                return model
        except CnnlabError:
            pass  # unreadable or foreign: export again
    try:
        result = export_onnx(loaded, cached)
        notes.append(f"exported to {cached} (ONNX Runtime vs torch max |difference| {result.max_diff:.1e})")
        return load_onnx(cached, spin=False)
    except PermissionError:
        result = export_onnx(loaded, None)  # a read-only bundle: keep the export in memory
        notes.append(f"exported in memory (cannot write {cached})")
        return OnnxModel(session_from(result.model_bytes, spin=False), result.metadata, None)


def open_model(source: str | Path, engine: str = "auto") -> Predictor:
    """A Predictor for a run folder, a bundle or an exported ``.onnx`` file.

    ``engine``: "auto" (ONNX Runtime when the export extra is installed, else torch),
    "onnxruntime" or "torch".
    """
    if engine not in ("auto", "onnxruntime", "torch"):
        raise CnnlabError(f"unknown engine {engine!r}", where="--engine", fix="use auto, onnxruntime or torch")
    path = Path(source)
    if path.suffix.lower() == ".onnx":
        if engine == "torch":
            raise CnnlabError("an .onnx file runs on ONNX Runtime only", where=str(path),
                              fix="serve the run folder to use the torch engine")
        from cnnlab.serve.onnx_model import load_onnx

        return _from_onnx(load_onnx(path, spin=False), str(path), notes=["heat maps need the torch bundle: serve the run folder"])
    from cnnlab.inference import load
    from cnnlab.serve.export import input_shape_of

    loaded = load(path)
    notes: list[str] = []
    if engine != "torch":
        if _onnx_available():
            try:
                return _from_onnx(_cached_export(loaded, Path(loaded.path), notes), str(path), loaded, notes)
            except CnnlabError as error:
                if engine == "onnxruntime":
                    raise
                notes.append(f"serving with eager torch: {error}")
        elif engine == "onnxruntime":
            raise CnnlabError("ONNX Runtime is not installed", where="--engine",
                              fix='pip install "cnnlab[export]", or use --engine torch')
        else:
            notes.append('eager torch (install "cnnlab[export]" for the faster ONNX Runtime engine)')
    arch = loaded.meta.get("architecture") or {}
    name = (arch.get("config") or {}).get("name") or (arch.get("spec") or {}).get("name") or path.name
    lock = threading.Lock()
    return Predictor(torch_runner(loaded, lock), "torch", str(name), loaded.task, loaded.classes, input_shape_of(loaded),
                     dict(loaded.meta.get("metrics") or {}), str(path), loaded, notes, lock)


class Batcher:
    """Gather concurrent requests into batches of at most ``max_batch`` images (see the module doc)."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_batch: int = 32, max_wait_ms: float = 2.0) -> None:
        self.run, self.max_batch, self.max_wait = run, max(1, int(max_batch)), max(0.0, max_wait_ms) / 1000.0
        self._queue: queue.Queue[tuple[np.ndarray, concurrent.futures.Future] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._held: tuple[np.ndarray, concurrent.futures.Future] | None = None
        self.batches = 0  # forward passes run (the tests and the benchmark read it)
        self.images = 0
        # Requests received but not yet submitted (being read or decoded). The worker waits for
        # more only while some are on their way: a lone request runs at once, with no added delay.
        self.incoming = 0

    def submit(self, images: np.ndarray) -> concurrent.futures.Future:
        """Queue ``images`` (N, H, W, C); the future gives their (N, K) outputs."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._start()
        self._queue.put((images, future))
        return future

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="cnnlab-batcher", daemon=True)
                self._thread.start()

    def close(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
                self._thread.join(timeout=10)
            self._thread = None

    def _gather(self) -> list[tuple[np.ndarray, concurrent.futures.Future]] | None:
        first = self._held if self._held is not None else self._queue.get()
        self._held = None
        if first is None:
            return None
        items, count = [first], len(first[0])
        deadline = time.perf_counter() + self.max_wait
        while count < self.max_batch:
            if self.incoming <= 0 and self._queue.empty():
                break
            try:
                remaining = deadline - time.perf_counter()
                item = self._queue.get_nowait() if remaining <= 0 else self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # close after this batch
                break
            if count + len(item[0]) > self.max_batch:
                self._held = item  # first of the next batch
                break
            items.append(item)
            count += len(item[0])
        return items

    def _work(self) -> None:
        while True:
            items = self._gather()
            if items is None:
                return
            batch = np.concatenate([images for images, _ in items]) if len(items) > 1 else items[0][0]
            try:
                out = np.concatenate([self.run(batch[i:i + self.max_batch])
                                      for i in range(0, len(batch), self.max_batch)])
            except BaseException as error:  # hand the failure to every waiting request, keep serving
                for _, future in items:
                    future.set_exception(error)
                continue
            self.batches += 1
            self.images += len(batch)
            start = 0
            for images, future in items:
                future.set_result(out[start:start + len(images)])
                start += len(images)


def describe(predictor: Predictor) -> dict[str, Any]:
    """The model card ``/v1/model`` returns."""
    h, w, c = predictor.input_shape
    return {"name": predictor.name, "task": predictor.task, "classes": predictor.classes,
            "input_size": {"height": h, "width": w, "channels": c}, "metrics": predictor.metrics,
            "engine": predictor.engine, "explain": predictor.torch_model is not None, "source": predictor.source,
            "notes": list(predictor.notes)}


def json_safe(value: Any) -> Any:
    """NaN / inf numbers -> None, so the JSON stays standard."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
