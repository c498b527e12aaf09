"""``write_report``: one self-contained HTML page for a run folder.

The page is built from the run's files (:mod:`cnnlab.report.run`) and from the
loaded model (:mod:`cnnlab.inference`): the validation split is re-created from
``config.yaml`` + ``split.json`` exactly as training made it, and evaluated with
``evaluate_model`` (one pass; the per-image outputs of that same pass feed the
galleries). Every picture is a PNG data URI, the CSS is inline, there is no
script and no external URL: the file opens offline in any browser.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.files import atomic_write_text, check_output
from cnnlab.report import figures as fig
from cnnlab.report.run import Run, read_run

REPORT_FILE = "report.html"
GALLERY = 16  # top losses / worst predictions shown
CONFUSED = 10  # most confused pairs listed
HTML_MATRIX = 20  # confusion matrices up to this many classes are HTML tables, larger ones a picture
AUGMENT_ROWS, AUGMENT_VIEWS = 6, 6


# ------------------------------------------------------------------------- inference


def _inference() -> tuple[Any, Any]:
    """(load, evaluate_model), imported on use (torch)."""
    from cnnlab.inference import load
    from cnnlab.inference.evaluate import evaluate_model

    return load, evaluate_model


class _Recording:
    """A LoadedModel whose ``predict_tensor`` keeps what it returns: evaluate_model's own pass
    then also gives the per-image outputs, so the set is run through the network once."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.outputs: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict_tensor(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        out = self._model.predict_tensor(x, *args, **kwargs)
        self.outputs.append(out.float().cpu().numpy())
        return out


# ------------------------------------------------------------------------------ data


def open_splits(run: Run, meta: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """{'train', 'validation', 'test'} -> ImageSet as the run saw them (missing ones left out), and notes.

    Mirrors the trainer's choice: an explicit ``data.val`` set, else the saved
    split, else a ``val/`` folder; the test split is the source's own when it has one.
    """
    from cnnlab.data.sources import available_splits, open_dataset
    from cnnlab.data.split import apply_split

    data = run.config["data"]
    pre = (meta or {}).get("preprocessing") or {}
    size = pre.get("image_size") or data.get("image_size")
    kwargs = {"root": data.get("root"), "image_size": tuple(size) if size else None,
              "channels": pre.get("channels") or data.get("channels"), "task": data.get("task")}
    source = str(data["source"])
    notes: list[str] = []
    sets: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped files are listed in the page
        train = open_dataset(source, split="train", **kwargs)
        splits = available_splits(source, data.get("root"))
        if data.get("val"):
            sets["validation"] = open_dataset(str(data["val"]), split="train", **kwargs)
        elif run.split is not None:
            train, sets["validation"] = apply_split(train, run.split)
        elif "val" in splits:
            sets["validation"] = open_dataset(source, split="val", **kwargs)
        if "test" in splits:
            try:
                sets["test"] = open_dataset(source, split="test", **kwargs)
            except CnnlabError as error:
                notes.append(f"the test split could not be opened: {error}")
    return {"train": train, **sets}, notes


# ------------------------------------------------------------------------- formatting


def _num(value: Any, digits: int = 4) -> dict[str, Any]:
    """A number for the page: shown rounded, exact in ``data-value`` (tests read it)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return {"text": "—" if value is None else str(value), "exact": repr(value)}
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return {"text": f"{int(value):,}", "exact": str(int(value))}
    return {"text": f"{float(value):.{digits}f}" if abs(float(value)) >= 1e-3 or value == 0 else f"{float(value):.3e}",
            "exact": repr(float(value))}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {sec:02d} s" if hours else f"{minutes} min {sec:02d} s"


def _image_u8(imageset: Any, index: int) -> np.ndarray:
    image = imageset.gather(np.asarray([index]))[0]
    return image[..., 0] if image.shape[-1] == 1 else image


# --------------------------------------------------------------------------- sections


def run_section(run: Run, meta: dict[str, Any] | None, sets: dict[str, Any], model: Any) -> dict[str, Any]:
    """Data source, classes and counts, skipped files, split, preprocessing, augmentation, model, config, times."""
    data = run.config.get("data") or {}
    train = sets.get("train")
    classes = (meta or {}).get("classes") or (train.classes if train is not None else None)
    task = (meta or {}).get("task") or (train.task if train is not None else None)
    counts = []
    if classes:
        per_split = {name: (s.class_counts() or {}) for name, s in sets.items()}
        for c in classes:
            counts.append({"name": c, "counts": [per_split[n].get(c, 0) for n in sets]})
        counts.append({"name": "total", "counts": [len(s) for s in sets.values()], "total": True})
    skipped = []
    for name, s in sets.items():
        for file, reason in getattr(s, "skipped", [])[:200]:
            skipped.append({"split": name, "file": file, "reason": reason})
    seen, unique = set(), []
    for row in skipped:  # a split made from one folder repeats the folder's skipped files
        key = (row["file"], row["reason"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    times = run.times()
    versions = (meta or {}).get("versions") or {}
    split = run.split or {}
    return {
        "source": data.get("source"), "val_source": data.get("val"), "root": data.get("root"),
        "task": task, "classes": classes, "split_names": list(sets), "counts": counts,
        "sizes": {name: len(s) for name, s in sets.items()},
        "skipped": unique, "split_seed": split.get("seed"), "split_fraction": split.get("fraction"),
        "preprocessing": (meta or {}).get("preprocessing"), "input_shape": (meta or {}).get("input_shape"),
        "augment": run.config.get("augment"), "augment_grid": augment_grid(run, train),
        "model": model_section(run, meta, model),
        "config_text": run.config_text, "seed": run.config.get("seed"),
        "device": times["device"] or (f"{run.config.get('device')} (the config's; the device used was not recorded)"
                                      if run.config.get("device") else None), "precision": times["precision"] or run.config.get("precision"),
        "versions": versions, "start": times["start"], "end": times["end"], "duration": _duration(times["seconds"]),
        "resumed": times["resumed"], "sessions": times["sessions"], "times_recorded": times["recorded"],
        "epochs_trained": (meta or {}).get("epochs_trained", len(run.history)), "epochs_asked": run.config.get("epochs"),
        "loss": (meta or {}).get("loss") or (run.config.get("loss") or {}).get("name"),
    }


def augment_grid(run: Run, train: Any) -> str | None:
    """Rows of (original, augmented views) of a few training images, with the run's augmentation."""
    config = run.config.get("augment")
    if not config or train is None or len(train) == 0:
        return None
    import torch

    from cnnlab.data.augment import Augment

    augment = Augment.from_config(config)
    n = min(AUGMENT_ROWS, len(train))
    picks = np.linspace(0, len(train) - 1, n).round().astype(np.int64)
    images = train.gather(picks)  # (n, H, W, C) uint8
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    generator = torch.Generator().manual_seed(int(run.config.get("seed") or 0))
    views = [x] + [augment(x, generator=generator).clamp(0, 1) for _ in range(AUGMENT_VIEWS)]
    tiles = []
    for i in range(n):
        for view in views:
            tiles.append((view[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    return fig.array_uri(fig.tile(tiles, columns=len(views), gap=2))


def model_section(run: Run, meta: dict[str, Any] | None, model: Any) -> dict[str, Any]:
    """The model section: name, Keras-style summary rows (frozen layers marked) and parameter counts."""
    arch = (meta or {}).get("architecture") or {}
    name = ((arch.get("spec") or {}).get("name") if arch.get("kind") == "spec"
            else (arch.get("config") or {}).get("name")) or str(run.config.get("model") or "auto")
    out: dict[str, Any] = {"name": name, "kind": arch.get("kind"), "rows": [], "total": None, "error": None}
    if model is None:
        out["error"] = "the run has no final model bundle, so the layer table cannot be built"
        return out
    try:
        from cnnlab.spec import summary

        s = summary(model.module, (meta or {}).get("input_shape"))
    except Exception as error:  # a summary is a nicety: the report goes on without it
        out["error"] = f"summary not available ({error})"
        return out
    from cnnlab.spec.errors import fmt_shape

    for row in s.layers:
        shape = row.output_shape
        shown = ", ".join(fmt_shape(x) for x in shape) if isinstance(shape, list) else (fmt_shape(shape) if shape else "?")
        out["rows"].append({"name": row.name, "type": row.type, "shape": shown, "params": row.params,
                            "trainable": row.trainable, "inputs": ", ".join(row.inputs or [])})
    out.update(total=s.total_params, trainable=s.trainable_params, non_trainable=s.non_trainable_params,
               graph=s.graph, frozen=sum(1 for r in s.layers if not r.trainable))
    return out


def curves_section(run: Run) -> dict[str, Any]:
    """One plot per metric (train vs validation), the learning rate, the best epoch and the events."""
    columns = run.columns
    epochs = [int(row.get("epoch", i)) for i, row in enumerate(run.history)]
    best = run.best_epoch
    events = run.events()
    plots = []
    bases = [c for c in columns if not c.startswith("val_") and c != "learning_rate"]
    bases += [c[4:] for c in columns if c.startswith("val_") and c[4:] not in bases]
    for base in bases:
        train = run.series(base) if base in columns else None
        val = run.series(f"val_{base}") if f"val_{base}" in columns else None
        plots.append({"title": base, "uri": fig.curve_uri(epochs, train, val, title=base, best=best, events=events)})
    if "learning_rate" in columns:
        lrs = run.series("learning_rate")
        positive = all(v > 0 for v in lrs if math.isfinite(v))
        plots.append({"title": "learning rate", "uri": fig.curve_uri(epochs, lrs, None, title="learning rate",
                                                                    best=best, events=events, log_y=positive,
                                                                    train_label="learning rate")})
    monitor, mode = run.monitor
    table = [{"epoch": e + 1, "best": i == best, "values": [_num(row.get(c)) for c in columns]}
             for i, (e, row) in enumerate(zip(epochs, run.history))]
    return {"plots": plots, "columns": columns, "table": table, "best": None if best is None else best + 1,
            "monitor": monitor, "mode": mode, "events": [{**e, "epoch": e["epoch"] + 1} for e in events],
            "best_value": _num(run.series(monitor)[best]) if best is not None else None}


def _gradcam(model: Any, x: Any, targets: list[int]) -> tuple[list[np.ndarray] | None, str | None]:
    """Grad-CAM heat maps (N, H, W) in [0, 1] for ``targets``, or (None, why not)."""
    try:
        from cnnlab.explain import explain  # type: ignore[attr-defined]
    except ImportError:
        return None, "Grad-CAM overlays need cnnlab.explain, which this install does not have yet"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a map with no positive evidence is still shown (flat)
            result = explain(model, x, method="gradcam", target=targets)
        return list(np.asarray(result.maps, dtype=np.float32)), None
    except Exception as error:  # the gallery still shows the images
        return None, f"Grad-CAM was not computed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"


def _overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    try:
        from cnnlab.explain import overlay  # type: ignore[attr-defined]

        return overlay(image, heat, alpha=0.5)
    except ImportError:
        base = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        return (0.5 * base + 0.5 * fig.colormap(heat, "jet")).round().astype(np.uint8)


def _prepare(model: Any, images: np.ndarray) -> Any:
    import torch

    from cnnlab.data.loader import normalize

    return normalize(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2), model.preprocessing)


def evaluation_section(model: Any, evaluate_model: Any, imageset: Any, split: str) -> dict[str, Any]:
    """Metrics, per-class table, confusion matrices, most confused pairs, top losses (or the regression views)."""
    recording = _Recording(model)
    result = evaluate_model(recording, imageset)
    out = np.concatenate(recording.outputs) if recording.outputs else np.zeros((0,))
    y = np.asarray(imageset.targets)
    section: dict[str, Any] = {"split": split, "images": result["images"], "task": result["task"]}
    if len(out) != len(y):  # cannot pair outputs with images: metrics only
        out = None
    if result["task"] == "regression":
        section["metrics"] = [("MAE", _num(result["mae"])), ("RMSE", _num(result["rmse"])), ("MSE", _num(result["mse"]))]
        if out is not None:
            predicted = out.reshape(len(y), -1)[:, 0].astype(np.float64)
            truth = y.astype(np.float64)
            residual = predicted - truth
            section["scatter"] = fig.scatter_uri(truth, predicted)
            section["histogram"] = fig.histogram_uri(residual)
            worst = np.argsort(-np.abs(residual), kind="stable")[:GALLERY]
            section["gallery"] = [{"uri": fig.array_uri(_image_u8(imageset, int(i))), "heat": None,
                                   "file": _file(imageset, int(i)), "lines": [f"true {truth[i]:.4g}",
                                   f"predicted {predicted[i]:.4g}", f"error {residual[i]:+.4g}"]} for i in worst]
            section["gallery_title"] = "Worst predictions (largest |predicted - true|)"
        return section
    classes = result["classes"]
    k = len(classes)
    section["metrics"] = [("accuracy", _num(result["accuracy"])), ("top-1 error", _num(result["top1_error"]))]
    if k > 5:
        section["metrics"].append(("top-5 accuracy", _num(1.0 - result["top5_error"])))
        section["metrics"].append(("top-5 error", _num(result["top5_error"])))
    section["per_class"] = [{"name": c, "precision": _num(v["precision"]), "recall": _num(v["recall"]),
                             "f1": _num(v["f1"]), "support": _num(v["support"])}
                            for c, v in result["per_class"].items()]
    matrix = np.asarray(result["confusion_matrix"])
    if k <= HTML_MATRIX:  # shaded HTML tables: crisp, searchable, and no text for matplotlib to lay out
        section["matrix"] = _matrix_tables(matrix, classes)
    else:
        section["confusion"] = fig.confusion_uri(matrix, classes)
    pairs = [(int(matrix[i, j]), i, j) for i in range(k) for j in range(k) if i != j and matrix[i, j] > 0]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    section["confused"] = [{"true": classes[i], "predicted": classes[j], "count": n,
                            "share": _num(n / max(int(matrix[i].sum()), 1), 3)} for n, i, j in pairs[:CONFUSED]]
    if out is not None:
        section.update(_top_losses(model, imageset, out, y, classes))
    return section


def _matrix_tables(matrix: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Counts and row-normalised shares, each cell with its shade (0..1 of the table's scale)."""
    counts = np.asarray(matrix, dtype=np.int64)
    sums = counts.sum(1, keepdims=True)
    shares = np.divide(counts, sums, out=np.zeros(counts.shape), where=sums > 0)
    peak = max(int(counts.max()) if counts.size else 0, 1)

    def cell(text: str, shade: float) -> dict[str, Any]:
        return {"text": text, "shade": f"{0.08 + 0.85 * shade:.3f}" if shade > 0 else "0", "dark": shade > 0.55}

    return {"classes": classes,
            "counts": [[cell(str(int(v)), v / peak) for v in row] for row in counts],
            "shares": [[cell(f"{v:.2f}", float(v)) for v in row] for row in shares]}


def _file(imageset: Any, i: int) -> str | None:
    files = getattr(imageset, "files", None)
    return files[i] if files else None


def _top_losses(model: Any, imageset: Any, out: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """The images with the largest cross-entropy -log p(true class), with Grad-CAM of the predicted class."""
    eps = 1e-12
    if out.ndim == 1 or out.shape[1] == 1:  # one sigmoid unit: p is P(class 1)
        p1 = out.reshape(-1).astype(np.float64)
        probs = np.stack([1 - p1, p1], axis=1)
    else:
        probs = out.astype(np.float64)
    p_true = probs[np.arange(len(y)), y.astype(np.int64)]
    loss = -np.log(np.clip(p_true, eps, 1.0))
    order = np.argsort(-loss, kind="stable")[:GALLERY]
    predicted = probs.argmax(1)
    images = imageset.gather(order)  # (n, H, W, C)
    heats, why = _gradcam(model, _prepare(model, images), [int(predicted[i]) for i in order]) if len(order) else (None, None)
    gallery = []
    for n, i in enumerate(order):
        image = images[n][..., 0] if images.shape[-1] == 1 else images[n]
        heat = fig.array_uri(_overlay(image, heats[n])) if heats is not None else None
        gallery.append({"uri": fig.array_uri(image), "heat": heat, "file": _file(imageset, int(i)),
                        "lines": [f"true: {classes[y[i]]}", f"predicted: {classes[predicted[i]]}",
                                  f"p(predicted) {probs[i, predicted[i]]:.3f}, p(true) {p_true[i]:.3f}",
                                  f"loss {loss[i]:.3f}"]})
    return {"gallery": gallery, "gallery_title": "Top losses (largest -log p(true class)); overlay: Grad-CAM of the predicted class",
            "gallery_note": why}


def inside_section(model: Any, imageset: Any) -> dict[str, Any]:
    """The first conv layer's filters, and one image's feature maps at the end of each conv stage.

    A stage is a run of convolutions at one spatial size; its last convolution's
    output is shown (up to 16 channels, each min-max scaled).
    """
    import torch
    from torch import nn

    convs = [(name, m) for name, m in model.module.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs or imageset is None or len(imageset) == 0:
        return {"error": "the model has no 2-D convolution" if not convs else "no image to look at"}
    seen: list[tuple[str, Any, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda mod, args, output, _n=name: seen.append((_n, mod, output.detach())))
             for name, m in convs]
    image = imageset.gather(np.asarray([0]))
    try:
        with torch.no_grad():
            model.module(_prepare(model, image))
    finally:
        for hook in hooks:
            hook.remove()
    if not seen:
        return {"error": "no convolution ran on the image"}
    first_name, first, _ = seen[0]
    weight = first.weight.detach().float().cpu().numpy()
    stages: list[tuple[str, torch.Tensor]] = []
    for name, _, output in seen:
        if output.dim() != 4:
            continue
        if stages and tuple(stages[-1][1].shape[2:]) == tuple(output.shape[2:]):
            stages[-1] = (name, output)
        else:
            stages.append((name, output))
    maps = []
    for name, out in stages[:8]:
        tiles = fig.maps_image(out[0].float().cpu().numpy())
        maps.append({"layer": name, "shape": f"{out.shape[2]}x{out.shape[3]}, {out.shape[1]} channels",
                     "uri": fig.array_uri(tiles), "width": _shown_width(tiles, out.shape[2], 56)})
    shown = image[0][..., 0] if image.shape[-1] == 1 else image[0]
    filters = fig.filters_image(weight)
    return {"first_layer": first_name, "filters_shape": "x".join(str(v) for v in weight.shape),
            "filters": fig.array_uri(filters), "filters_width": _shown_width(filters, weight.shape[2], 28),
            "image": fig.array_uri(shown), "maps": maps, "error": None}


def _shown_width(tiles: np.ndarray, tile_height: int, want: int, limit: int = 1100) -> int:
    """CSS width (px) that shows each tile about ``want`` pixels tall, in whole pixels per pixel."""
    scale = max(1, round(want / max(int(tile_height), 1)))
    return int(min(tiles.shape[1] * scale, limit))


# ---------------------------------------------------------------------------- the page


def _env() -> Any:
    import jinja2

    folder = Path(__file__).with_name("templates")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["css"] = (folder / "report.css").read_text(encoding="utf-8")
    return env


def render(template: str, **context: Any) -> str:
    """Render one of the package's jinja2 templates (autoescaped: class and file names are user data)."""
    return _env().get_template(template).render(**context)


def build_context(run_dir: str | Path) -> dict[str, Any]:
    """Everything the report template shows, for a run folder."""
    from cnnlab import __version__

    run = read_run(run_dir)
    started = time.perf_counter()
    load, evaluate_model = _inference()
    notes: list[str] = []
    model, model_from = None, None
    if run.finished:
        model, model_from = load(run.path), "final"
    elif run.best_meta is not None:
        try:
            model, model_from = load(run.path / "best"), "best"
        except CnnlabError as error:
            notes.append(f"the best checkpoint could not be loaded: {error}")
    meta = model.meta if model is not None else run.any_meta
    try:
        sets, more = open_splits(run, meta)
        notes += more
    except CnnlabError as error:
        sets = {}
        notes.append(f"the data could not be opened, so nothing is evaluated: {error}")
    evaluations = []
    if model is not None:
        for split in ("validation", "test"):
            if split in sets and len(sets[split]):
                evaluations.append(evaluation_section(model, evaluate_model, sets[split], split))
    inside = inside_section(model, sets.get("validation") or sets.get("train")) if model is not None else None
    status = "finished" if run.finished else "crashed"
    last_state = run.states[-1].name if run.states else None
    return {
        "title": f"cnnlab report: {run.name}", "run_name": run.name, "run_path": str(run.path), "status": status,
        "model_from": model_from, "states": [p.name for p in run.states], "last_state": last_state,
        "notes": notes, "run": run_section(run, meta, sets, model), "curves": curves_section(run) if run.history else None,
        "final_metrics": [(k, _num(v)) for k, v in ((run.meta or {}).get("metrics") or {}).items()],
        "evaluations": evaluations, "inside": inside, "cnnlab_version": __version__,
        "written": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "build_seconds": None,
        "_started": started,
    }


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's report (``RUN/report.html`` unless ``out``) and return its path.

    A folder that is not a run is a :class:`CnnlabError`; a run that crashed
    (states but no final bundle) gets a report that says so and shows what exists.
    """
    if out is not None:  # refused before the minutes of plots and evaluation, not after
        check_output(out, example=REPORT_FILE, where=f"--out {out}")
    context = build_context(run_dir)
    context["build_seconds"] = f"{time.perf_counter() - context.pop('_started'):.1f}"
    html = render("report.html.j2", **context)
    path = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    atomic_write_text(path, html)
    return path


__all__ = ["REPORT_FILE", "build_context", "open_splits", "write_report"]
