"""Export a trained model to ONNX, checked with ONNX Runtime before anything is written.

The exported graph takes images as a user has them and returns what
``LoadedModel.predict`` returns::

    images  uint8 (N, H, W, C)                      (NHWC, N dynamic)
    x       = permute(images) * scale               (scale 1/255 by default: x = u8 / 255)
    x       = (x - mean) / std                      (only when the bundle standardises)
    out     = softmax / sigmoid (model(x))          ("probabilities"; regression: "values")

so another runtime needs no preprocessing code. The class names, the input
size, the preprocessing and the cnnlab version travel in the model's metadata
(``metadata_props``, keys ``cnnlab.*``).

``torch.onnx.export(..., dynamo=True)`` traces with an example batch of 2:
torch.export specialises a dimension it sees at size 1, and the batch must
stay dynamic. Before the file is written, ONNX Runtime (CPU provider) runs it on
a batch of images and its outputs must agree with cnnlab's own to ``atol``
(1e-4); a failed export or check writes nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CnnlabError

INPUT_NAME = "images"
DEFAULT_OPSET = 18  # ONNX Runtime >= 1.14 runs it; onnxscript's translations are complete from 18 on
TRACE_BATCH = 2  # a dimension traced at 1 is specialised by torch.export
MAX_BATCH = 1 << 16
CHECK_BATCH = 7  # neither the traced batch nor 1: the check also proves the batch is dynamic
ATOL = 1e-4
META_PREFIX = "cnnlab."


@dataclass
class ExportResult:
    """What ``export_onnx`` did: the file, the check's maximum difference, the opset, seconds taken."""

    path: Path | None
    max_diff: float
    opset: int
    seconds: float
    metadata: dict[str, str]
    model_bytes: bytes | None = None


class InGraphPreprocessing(nn.Module):
    """uint8 NHWC images -> the wrapped model's probabilities, as ``LoadedModel.predict`` computes them."""

    def __init__(self, module: nn.Module, preprocessing: dict[str, Any], head: Any) -> None:
        super().__init__()
        from cnnlab.data.loader import DEFAULT_SCALE

        self.module, self.head = module, head
        scale = float(preprocessing.get("scale") or DEFAULT_SCALE)
        # normalize() divides by 255 at the default scale (exactly u8 / 255) and multiplies otherwise.
        self.divide = scale == DEFAULT_SCALE
        self.scale = scale
        mean, std = preprocessing.get("mean"), preprocessing.get("std")
        self.standardise = mean is not None
        if self.standardise:
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        x = x / 255.0 if self.divide else x * self.scale
        if self.standardise:
            x = (x - self.mean) / self.std
        return self.head.probabilities(self.module(x))


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise CnnlabError(f"{module} is not installed", where="cnnlab export",
                          fix='install the export extra: pip install "cnnlab[export]"') from None


def _load(model: Any) -> Any:
    if isinstance(model, (str, Path)):
        from cnnlab.inference import load

        return load(model)
    return model


def input_shape_of(loaded: Any) -> tuple[int, int, int]:
    """(H, W, C) the model takes, from its preprocessing (else ``input_shape`` in model.json)."""
    pre = loaded.preprocessing or {}
    if pre.get("image_size") and pre.get("channels"):
        h, w = (int(v) for v in pre["image_size"])
        return h, w, int(pre["channels"])
    shape = loaded.meta.get("input_shape")
    if not shape:
        raise CnnlabError("model.json gives no input size", where=str(loaded.path),
                          fix="export a bundle written by `cnnlab train`")
    return tuple(int(v) for v in shape)  # type: ignore[return-value]


def metadata_of(loaded: Any, shape: tuple[int, int, int]) -> dict[str, str]:
    """The ``cnnlab.*`` metadata strings stored in the ONNX file."""
    from cnnlab import __version__

    meta = loaded.meta
    output = "values" if loaded.task == "regression" else "probabilities"
    arch = meta.get("architecture") or {}
    name = (arch.get("config") or {}).get("name") or ((arch.get("spec") or {}).get("name") if isinstance(arch.get("spec"), dict) else None)
    return {
        f"{META_PREFIX}version": __version__,
        f"{META_PREFIX}classes": json.dumps(loaded.classes),
        f"{META_PREFIX}input_size": json.dumps(list(shape)),
        f"{META_PREFIX}input_layout": "NHWC uint8",
        f"{META_PREFIX}output": output,
        f"{META_PREFIX}task": loaded.task,
        f"{META_PREFIX}preprocessing": json.dumps(loaded.preprocessing or {}),
        f"{META_PREFIX}metrics": json.dumps(meta.get("metrics") or {}),
        f"{META_PREFIX}model": str(name or "model"),
        f"{META_PREFIX}weights_sha256": str(meta.get("weights_sha256") or ""),
    }


def check_images(shape: tuple[int, int, int], n: int = CHECK_BATCH, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 batch (N, H, W, C): black, white, a gradient and noise."""
    h, w, c = shape
    rng = np.random.default_rng(seed)
    batch = rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
    batch[0] = 0
    if n > 1:
        batch[1] = 255
    if n > 2:
        ramp = np.linspace(0, 255, w, dtype=np.float64)[None, :, None]
        batch[2] = np.broadcast_to(np.rint(ramp), (h, w, c)).astype(np.uint8)
    return batch


def failing_operator(error: BaseException) -> str | None:
    """The aten operator an exporter error names (``aten._linalg_svd``), if any."""
    texts = []
    seen: BaseException | None = error
    while seen is not None and len(texts) < 10:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    for text in texts:
        for pattern in (r"OpOverload\(op='([\w.]+)'", r"target=torch\.ops\.([\w]+\.[\w]+)", r"torch\.ops\.([\w]+\.[\w]+)"):
            found = re.search(pattern, text)
            if found:
                return found.group(1)
    return None


def _first_line(error: BaseException) -> str:
    seen: BaseException = error
    while seen.__cause__ is not None:  # the innermost cause says what went wrong, the outer ones where
        seen = seen.__cause__
    lines = [line.strip() for line in str(seen).splitlines() if line.strip()]
    return f"{type(seen).__name__}: {lines[0] if lines else ''}"[:300]


def _quiet_exporter() -> None:
    """The exporter logs a warning per torchvision op it skips; cnnlab has no torchvision."""
    import logging

    for name in ("torch.onnx._internal.exporter._registration", "torch.onnx", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)


def to_onnx_bytes(loaded: Any, *, opset: int | None = None) -> tuple[bytes, dict[str, str]]:
    """Trace ``loaded`` (a LoadedModel) into an ONNX model with the in-graph preprocessing; no check."""
    import warnings

    onnx = _require("onnx")
    _require("onnxscript")
    _quiet_exporter()
    shape = input_shape_of(loaded)
    wrapper = InGraphPreprocessing(loaded.module, loaded.preprocessing or {}, loaded.head).eval()
    example = torch.from_numpy(check_images(shape, TRACE_BATCH, seed=1))
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    opset = int(opset or DEFAULT_OPSET)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(wrapper, (example,), dynamo=True, input_names=[INPUT_NAME],
                                        output_names=["values" if loaded.task == "regression" else "probabilities"],
                                        dynamic_shapes={"images": {0: batch}}, opset_version=opset,
                                        optimize=True, verbose=False, report=False)
    except Exception as error:  # the exporter raises many types; each is a model it cannot translate
        op = failing_operator(error)
        what = f"operator {op} has no ONNX translation" if op else "the exporter failed"
        raise CnnlabError(f"cannot export to ONNX: {what} ({_first_line(error)})", where=str(getattr(loaded, "path", "model")),
                          fix=(f"replace the layer that uses {op} with one ONNX supports, or serve the bundle with eager torch"
                               if op else "serve the bundle with eager torch (cnnlab serve RUN without the export extra)")) from None
    proto = program.model_proto
    # The exporter falls back to its own opset when it cannot convert down to the one asked for,
    # and a file of another opset than requested would fail later in the user's runtime.
    written = next((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), opset)
    if written != opset:
        raise CnnlabError(f"the exporter cannot write opset {opset} for this model (it wrote opset {written})",
                          where="--opset", fix=f"use --opset {written} (or leave it out: {DEFAULT_OPSET})")
    metadata = metadata_of(loaded, shape)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "cnnlab"
    try:
        data = proto.SerializeToString()
    except ValueError as error:  # protobuf's 2 GB limit
        raise CnnlabError(f"the model is too large for one ONNX file ({error})", where=str(loaded.path),
                          fix="export a smaller model") from None
    onnx.checker.check_model(onnx.load_from_string(data))
    return data, metadata


def session_from(source: bytes | str | Path, threads: int | None = None, spin: bool = True) -> Any:
    """An ONNX Runtime session on the CPU provider (``threads``: intra-op threads, default all cores).

    ``spin=False``: idle worker threads sleep instead of spinning for the next op
    (a server between requests would otherwise burn the cores its HTTP side needs).
    """
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = int(threads)
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = source if isinstance(source, bytes) else str(source)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def compare(loaded: Any, session: Any, images: np.ndarray) -> float:
    """max |ONNX Runtime - cnnlab| over ``images`` (uint8 NHWC)."""
    from cnnlab.data.loader import normalize

    ours = loaded.predict_tensor(normalize(torch.from_numpy(images).permute(0, 3, 1, 2), loaded.preprocessing)).float().numpy()
    theirs = session.run(None, {INPUT_NAME: images})[0]
    if theirs.shape != ours.shape:
        return float("inf")
    return float(np.max(np.abs(theirs.astype(np.float64) - ours.astype(np.float64)))) if ours.size else 0.0


def export_onnx(model: Any, out: str | Path | None = None, *, opset: int | None = None, atol: float = ATOL,
                images: np.ndarray | None = None, say: Callable[[str], None] | None = None) -> ExportResult:
    """Export ``model`` (a run folder / bundle path or a LoadedModel) to ``out`` after checking it.

    ONNX Runtime runs the exported graph on ``images`` (uint8 NHWC; default a
    deterministic batch of 7) and must match cnnlab's probabilities to ``atol``:
    ``max |p_onnx - p_cnnlab| <= atol``. ``out=None`` checks without writing
    (``ExportResult.model_bytes`` holds the model). Nothing is written when any step fails.
    """
    from cnnlab.files import atomic_write_bytes, check_output

    start = time.perf_counter()
    if out is not None:  # refused before the export's seconds of tracing, not after
        check_output(out, example="model.onnx", where=f"--out {out}")
    loaded = _load(model)
    shape = input_shape_of(loaded)
    data, metadata = to_onnx_bytes(loaded, opset=opset)
    session = session_from(data)
    batch = check_images(shape) if images is None else np.ascontiguousarray(images, dtype=np.uint8)
    diff = compare(loaded, session, batch)
    if not diff <= atol:  # also catches NaN
        raise CnnlabError(f"ONNX Runtime disagrees with cnnlab: max |difference| {diff:.3g} > {atol:g} "
                          f"on {len(batch)} images; nothing was written", where=str(getattr(loaded, "path", "model")),
                          fix="serve the bundle with eager torch, or report the model's layers as a bug")
    path = None
    if out is not None:
        path = atomic_write_bytes(out, data)
    result = ExportResult(path, diff, int(opset or DEFAULT_OPSET), time.perf_counter() - start, metadata,
                          None if out is not None else data)
    if say is not None:
        where = f"wrote {path}" if path else "checked"
        say(f"{where} (opset {result.opset}, {len(data) / 1e6:.1f} MB): ONNX Runtime vs cnnlab max |difference| "
            f"{diff:.2e} on {len(batch)} images (limit {atol:g})")
    return result
