"""An exported ``.onnx`` file used like a bundle: ``load_onnx(path).predict(images)``.

The file carries its own preprocessing (uint8 NHWC in, probabilities out) and
its metadata (``cnnlab.classes``, ``cnnlab.input_size`` ...), so predicting only
decodes and resizes the images the way training did (``cnnlab.data.decode``)
and runs ONNX Runtime.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.inference.head import labels_of, squeeze_single_unit
from cnnlab.serve.export import INPUT_NAME, META_PREFIX, session_from


class OnnxModel:
    """``predict`` / ``predict_classes`` like ``LoadedModel``, through ONNX Runtime (CPU)."""

    engine = "onnxruntime"

    def __init__(self, session: Any, metadata: dict[str, str], path: Path | None = None) -> None:
        self.session, self.path = session, path
        self.metadata = metadata
        try:
            shape = json.loads(metadata[f"{META_PREFIX}input_size"])
            self.classes: list[str] | None = json.loads(metadata.get(f"{META_PREFIX}classes", "null"))
            self.preprocessing: dict[str, Any] = json.loads(metadata.get(f"{META_PREFIX}preprocessing", "{}"))
            self.metrics: dict[str, Any] = json.loads(metadata.get(f"{META_PREFIX}metrics", "{}"))
        except (KeyError, ValueError):
            raise CnnlabError("is not an ONNX file written by `cnnlab export` (no cnnlab metadata)",
                              where=str(path or "model"), fix="export the run with `cnnlab export RUN`") from None
        self.input_shape: tuple[int, int, int] = tuple(int(v) for v in shape)  # type: ignore[assignment]
        self.task: str = metadata.get(f"{META_PREFIX}task", "classification")
        self.name = metadata.get(f"{META_PREFIX}model", "model")
        self.version = metadata.get(f"{META_PREFIX}version", "?")
        self._local = threading.local()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, C) at the model's size -> the raw output (N, K) (or (N, 1))."""
        if len(batch) == 0:
            return np.zeros((0, 1), dtype=np.float32)
        return self.session.run(None, {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.uint8)})[0]

    def decode(self, images: Any) -> np.ndarray:
        """Paths, bytes, PIL images or uint8 arrays -> uint8 (N, H, W, C) as training decoded them."""
        from cnnlab.data.decode import BadImage, decode_image

        h, w, c = self.input_shape
        if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.shape[-3:] == (h, w, c):
            return images.reshape(-1, h, w, c)
        if isinstance(images, (str, Path, bytes)) or not isinstance(images, (list, tuple, np.ndarray)):
            images = [images]
        batch = np.empty((len(images), h, w, c), dtype=np.uint8)
        for i, item in enumerate(images):
            if isinstance(item, np.ndarray) or hasattr(item, "save"):
                import io

                from PIL import Image

                image = item if hasattr(item, "save") else Image.fromarray(np.squeeze(np.asarray(item)))
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")  # the one decode path, as LoadedModel.prepare does
                item = buffer.getvalue()
            try:
                batch[i] = decode_image(str(item) if isinstance(item, Path) else item, (h, w), c)
            except BadImage as bad:
                raise CnnlabError(f"cannot use this image: {bad}", where=str(item) if not isinstance(item, bytes)
                                  else f"images[{i}]", fix="give a readable JPEG/PNG/... image") from None
        return batch

    def predict(self, images: Any) -> np.ndarray:
        """Probabilities (N, K) / (N,) for one sigmoid unit, or values (N,) for regression."""
        return squeeze_single_unit(self.run(self.decode(images)))

    def predict_classes(self, images: Any) -> list[Any]:
        """Class names (argmax, or the 0.5 threshold of one sigmoid unit), or numbers for regression."""
        return labels_of(self.predict(images), self.task, self.classes)


def read_metadata(session: Any) -> dict[str, str]:
    """The ``metadata_props`` of the session's model (``cnnlab.*`` keys written by the export)."""
    return dict(session.get_modelmeta().custom_metadata_map)


def load_onnx(path: str | Path, threads: int | None = None, spin: bool = True) -> OnnxModel:
    """Open an exported model with ONNX Runtime's CPU provider (``spin``: see ``session_from``)."""
    path = Path(path)
    if not path.is_file():
        raise CnnlabError("no such ONNX file", where=str(path), fix="export one with `cnnlab export RUN -o model.onnx`")
    try:
        session = session_from(path, threads, spin)
    except CnnlabError:
        raise
    except Exception as error:  # onnxruntime raises its own Fail / InvalidGraph / ... types
        raise CnnlabError(f"ONNX Runtime cannot open it ({str(error).splitlines()[0][:200]})", where=str(path),
                          fix="export it again with `cnnlab export RUN`") from None
    return OnnxModel(session, read_metadata(session), path)
