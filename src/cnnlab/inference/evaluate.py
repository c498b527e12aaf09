"""Evaluate a trained model on a data set, and predict images: what ``cnnlab evaluate`` / ``predict`` print.

Classification: accuracy, top-1 / top-5 error, per-class precision / recall /
F1 and the confusion matrix (rows = true class, columns = predicted), also as
a PNG. Regression: MAE, MSE, RMSE.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_path
from cnnlab.inference.model import LoadedModel

TTA_MODES = ("none", "flip", "flip_translate")


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    return np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)


def per_class_scores(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class (0 where undefined, as scikit-learn's zero_division=0)."""
    tp = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(0).astype(float), matrix.sum(1).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(int)}


def _shift_reflect(x: torch.Tensor, d: int) -> torch.Tensor:
    """``x`` (N, C, H, W) with its content moved right and down by ``d`` pixels, reflected at the border."""
    p = abs(d)
    h, w = x.shape[2], x.shape[3]
    padded = torch.nn.functional.pad(x, (p, p, p, p), mode="reflect")
    return padded[:, :, p - d:p - d + h, p - d:p - d + w]


def predict_tta(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """``predict`` of a batch ``x`` (N, C, H, W), averaged over test-time views.

    ``"none"``: ``predict(x)``. ``"flip"``: ``(predict(x) + predict(flip(x))) / 2``, flip
    mirroring the width. ``"flip_translate"`` (airbench94's level 2):
    ``flip'(x) / 2 + flip'(x moved by (1, 1)) / 4 + flip'(x moved by (-1, -1)) / 4``
    where ``flip'`` is the ``"flip"`` mean and moves reflect at the border.
    Whatever ``predict`` returns (logits or probabilities) is what is averaged.
    """
    if tta not in TTA_MODES:
        raise CnnlabError(f"unknown test-time augmentation {tta!r}", where="tta",
                          fix=f"use one of {', '.join(TTA_MODES)}")
    if tta == "none":
        return predict(x)

    def mirrored(view: torch.Tensor) -> torch.Tensor:
        return 0.5 * predict(view) + 0.5 * predict(view.flip(-1))

    out = mirrored(x)
    if tta == "flip_translate":
        out = 0.5 * out + 0.25 * mirrored(_shift_reflect(x, 1)) + 0.25 * mirrored(_shift_reflect(x, -1))
    return out


def evaluate_model(model: LoadedModel, imageset: Any, *, batch_size: int = 256, tta: str = "none") -> dict[str, Any]:
    """Metrics of ``model`` on ``imageset`` (a :class:`cnnlab.data.ImageSet`), JSON-friendly.

    ``tta``: test-time augmentation, see :func:`predict_tta` (the model's
    probabilities, or values for regression, are what is averaged).
    """
    from cnnlab.data.loader import BatchLoader

    if len(imageset) == 0:
        raise CnnlabError("holds no usable image", where=imageset.name or "data", fix="give a set with images")
    if tta not in TTA_MODES:  # before any work
        raise CnnlabError(f"unknown test-time augmentation {tta!r}", where="tta",
                          fix=f"use one of {', '.join(TTA_MODES)}")
    loader = BatchLoader(imageset, batch_size, shuffle=False, preprocessing=model.preprocessing)
    outputs, targets = [], []
    for x, y in loader.iter_epoch(0):
        outputs.append(predict_tta(model.predict_tensor, x, tta).float())
        targets.append(y)
    out = torch.cat(outputs).numpy()
    y = torch.cat(targets).numpy()
    result: dict[str, Any] = {"images": int(len(y)), "task": model.task, "tta": tta}
    if model.task == "regression":
        diff = out.reshape(len(y), -1)[:, 0] - y.astype(np.float64)
        result.update(mae=float(np.abs(diff).mean()), mse=float((diff ** 2).mean()),
                      rmse=float(np.sqrt((diff ** 2).mean())))
        return result
    classes = list(model.classes or [])
    if imageset.classes is not None and list(imageset.classes) != classes:
        raise CnnlabError(f"the data's classes {imageset.classes} differ from the model's {classes}",
                          where=imageset.name or "data", fix="evaluate on data with the classes the model learned")
    k = len(classes)
    if out.ndim == 1 or out.shape[1] == 1:
        p = out.reshape(-1)
        predicted = (p > 0.5).astype(np.int64)
        top5 = np.ones(len(y), dtype=bool)
    else:
        predicted = out.argmax(1)
        top5 = (np.argsort(-out, axis=1, kind="stable")[:, :5] == y[:, None]).any(1)
    matrix = confusion_matrix(y.astype(np.int64), predicted, k)
    accuracy = float((predicted == y).mean())
    scores = per_class_scores(matrix)
    result.update(
        accuracy=accuracy, top1_error=1.0 - accuracy, top5_error=float(1.0 - top5.mean()),
        classes=classes,
        per_class={name: {key: (int(v[i]) if key == "support" else float(v[i])) for key, v in scores.items()}
                   for i, name in enumerate(classes)},
        confusion_matrix=matrix.tolist(),
    )
    return result


def save_confusion_png(result: dict[str, Any], path: str | Path) -> Path:
    """The confusion matrix as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(result["confusion_matrix"])
    classes = result["classes"]
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * k, 1.0 + 0.5 * k), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = matrix.max() if matrix.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > peak / 2 else "black", fontsize=8)
    ax.set_title(f"accuracy {result['accuracy']:.4f}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def image_files(items: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders expanded to their image files: the files training reads from a
    class folder (:data:`cnnlab.data.folders.IMAGE_EXTENSIONS`, hidden files and folders and
    operating-system junk skipped), recursively, sorted."""
    from cnnlab.data.folders import walk_images
    from cnnlab.files import path_kind

    files: list[Path] = []
    for item in items:
        path = Path(item)
        kind = path_kind(path)
        if kind == "dir":
            found = [Path(p) for p in walk_images(path)]
            if not found:
                raise CnnlabError("holds no image file", where=str(path), fix="give image files or a folder of them")
            files.extend(found)
        elif kind == "file":
            files.append(path)
        elif kind == "missing":
            raise CnnlabError("no such file or folder", where=str(path), fix="check the path")
        else:
            raise CnnlabError("is neither a file nor a folder", where=str(path), fix="give image files or folders")
    return files


def predict_files(model: LoadedModel, files: Sequence[Path], *, top_k: int = 1, batch_size: int = 64) -> list[dict[str, Any]]:
    """One record per file: ``{file, class, probability, top}`` or ``{file, value}`` for regression."""
    records: list[dict[str, Any]] = []
    for start in range(0, len(files), batch_size):
        chunk = list(files[start:start + batch_size])
        out = model.predict([str(f) for f in chunk])
        for i, path in enumerate(chunk):
            if model.task == "regression":
                records.append({"file": str(path), "value": float(np.asarray(out[i]).reshape(-1)[0])})
                continue
            names = model.classes or []
            if out.ndim == 1:  # one sigmoid unit: class 1 when p > 0.5
                p = float(out[i])
                one, zero = (names[1] if len(names) > 1 else "1", p), (names[0] if names else "0", 1 - p)
                ranked = [one, zero] if p > 0.5 else [zero, one]
            else:
                order = np.argsort(-out[i], kind="stable")
                ranked = [(names[j] if j < len(names) else str(j), float(out[i][j])) for j in order]
            records.append({"file": str(path), "class": ranked[0][0], "probability": ranked[0][1],
                            "top": [{"class": c, "probability": p} for c, p in ranked[:max(top_k, 1)]]})
    return records
