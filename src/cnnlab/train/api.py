"""The public training API: ``fit`` an experiment into a run folder (``cnnlab.load`` reads it back).

A run folder (``--out runs/NAME``) holds::

    model.json, weights.safetensors   the final model (a bundle)
    best/                             the best epoch's bundle (ModelCheckpoint)
    history.csv                       one row per epoch
    config.yaml                       the resolved experiment
    split.json                        the train / validation split
    state/                            the training state for --resume

Everything is checked (config, data, model output against the data) before
the run folder is created, so a bad input leaves nothing behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import CnnlabError, shorten
from cnnlab.files import atomic_write_text, check_output, existing, exists, path_kind
from cnnlab.inference.head import OutputHead, find_output_head
from cnnlab.train import config as cfg
from cnnlab.train.recipe import apply_recipe

SPLIT_FILE = "split.json"


@dataclass
class History:
    """What ``fit`` returns: Keras's ``history.history`` plus the run folder and the model."""

    rows: list[dict[str, float]]
    run_dir: Path
    model: nn.Module | None = field(default=None, repr=False)
    picked: list[str] = field(default_factory=list)

    @property
    def history(self) -> dict[str, list[float]]:
        keys = list(dict.fromkeys(k for row in self.rows for k in row))
        return {k: [row.get(k, float("nan")) for row in self.rows] for k in keys}

    @property
    def epochs(self) -> int:
        return len(self.rows)


# ----------------------------------------------------------------------------- models


def auto_spec(input_shape: Sequence[int], outputs: int, activation: str) -> dict[str, Any]:
    """A small Keras-style CNN sized to the images, built to classify and to be explained.

    conv-BN-ReLU blocks (32, then 64 filters) each halve the map with 2x2 max pooling while
    it is at least 14 pixels wide (32x32 -> 8x8, 28x28 -> 7x7); then a 3x3 conv of 64 and a
    5x5 conv of 128 filters at that resolution, no pooling, GAP, Dense. The last map keeps
    about 4 input pixels a cell and each of its units sees a 34-pixel square densely, so
    that the class activation map of the GAP + Dense head can point at the object: trained
    with ``auto_settings``'s cutout, its maximum falls on the shape for 92-97 % of the
    ``shapes`` test images (by seed), where the earlier 32-64-128 net pooled to 4x4 managed 47 %
    (issue 15 in benchmarks/RESULTS.md), for 1.3x that net's training step.
    """
    h, w, c = (int(v) for v in input_shape)
    layers: list[dict[str, Any]] = []

    def block(filters: int, kernel: int) -> None:
        layers.extend([{"type": "Conv2D", "filters": filters, "kernel_size": kernel, "padding": "same", "use_bias": False},
                       {"type": "BatchNormalization", "momentum": 0.9},  # Keras 0.99 lags for short runs
                       {"type": "Activation", "activation": "relu"}])

    size, filters = min(h, w), 32
    while size >= 14:
        block(filters, 3)
        layers.append({"type": "MaxPooling2D", "pool_size": 2})
        size, filters = size // 2, 64
    block(64, 3)
    block(128, 5)
    layers += [{"type": "GlobalAveragePooling2D"}, {"type": "Dense", "units": outputs, "activation": activation}]
    return {"name": "auto_cnn", "input_shape": [h, w, c], "layers": layers}


def auto_settings(exp: cfg.Experiment, train_size: int, image_shape: Sequence[int]) -> cfg.Experiment:
    """Training settings for the auto model, where the user left them unset.

    A one-cycle schedule at a high peak rate converges the small auto CNN in a
    few epochs; small sets get more epochs so that every run sees about the same
    number of images (the default ``shapes`` run: 25 epochs of 3,200 images,
    about 99% validation accuracy in about two minutes on two CPU cores).
    Augmentation, unless the user gave one: zoom by up to 20 % and cutout of a quarter
    of the image side (DeVries & Taylor 2017), which hides a part of every training
    image so that the net learns the whole object rather than one telling edge: on
    ``shapes`` the CAM's maximum lands on the object for 95 % of the test images with
    it (mean of five seeds), 86 % without (two seeds; both label-safe for digits, unlike flips).
    """
    changes: dict[str, Any] = {}
    if "augment" not in exp.model_fields_set:  # `augment: null` in a config file means none
        changes["augment"] = {"zoom_range": 0.2, "fill_mode": "reflect",
                              "cutout": max(1, round(min(int(v) for v in image_shape[:2]) / 4))}
    if "epochs" not in exp.model_fields_set:
        changes["epochs"] = 25 if train_size <= 10_000 else 15 if train_size <= 100_000 else 10
    optimizer_given = "optimizer" in exp.model_fields_set and exp.optimizer.model_fields_set
    if not optimizer_given:
        changes["optimizer"] = exp.optimizer.model_copy(update={"lr": 0.005})
    if "schedule" not in exp.model_fields_set:
        changes["schedule"] = exp.schedule.model_copy(update={"name": "onecycle"})
    return exp.model_copy(update=changes) if changes else exp


def build_model(model: Any, options: Mapping[str, Any], *, input_shape: Sequence[int], outputs: int,
                activation: str, seed: int) -> tuple[nn.Module, dict[str, Any], str]:
    """(module, architecture entry for model.json, what was built in words)."""
    if model is None:
        spec = auto_spec(input_shape, outputs, activation)
        return _build_spec(spec, seed), {"kind": "spec", "spec": None}, "auto_cnn (a small conv-BN-ReLU CNN)"
    if isinstance(model, (dict, list)) or (isinstance(model, str) and cfg.is_spec_file(model)):
        if isinstance(model, str):
            existing(model, "file", what="spec file", where=f"--model {model}",
                     fix="give the path of a model spec (.yaml or .json), or a zoo name (`cnnlab models`)")
        built = _build_spec(model, seed)
        return built, {"kind": "spec", "spec": None}, f"spec {model if isinstance(model, str) else '(inline)'}"
    from cnnlab.models import create

    torch.manual_seed(seed)
    module = create(str(model), num_classes=outputs, input_shape=tuple(input_shape), **dict(options))
    return module, {"kind": "zoo", "config": dict(getattr(module, "config", {}) or {"name": model})}, str(model)


AUTO_MODEL_FILE = "auto_model.json"  # the auto model's spec, as the run began


def saved_auto_spec(run_dir: Path) -> dict[str, Any] | None:
    """The spec of the auto model a run began with, so that a resume rebuilds that very net.

    Runs started before ``auto_model.json`` existed fall back to the spec in a bundle the
    run saved (``model.json`` at a session's end, ``best/model.json`` at its best epoch);
    None when there is none.
    """
    bundled = ("architecture", "spec")
    for path, inside in ((run_dir / AUTO_MODEL_FILE, ()), (run_dir / "model.json", bundled),
                         (run_dir / "best" / "model.json", bundled)):
        try:
            found = json.loads(path.read_text())
            for key in inside:
                found = found[key]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(found, dict) and found.get("name") == "auto_cnn":
            return found
    return None


def _build_spec(spec: Any, seed: int) -> nn.Module:
    from cnnlab.spec import build

    return build(spec, seed=seed)


def architecture_of(module: nn.Module, arch: dict[str, Any]) -> dict[str, Any]:
    if arch.get("kind") == "spec":
        return {"kind": "spec", "spec": getattr(module, "spec")}
    return arch


def make_regularization(model: nn.Module):
    """The spec's kernel regularisers as a loss term, or None when the model has none."""
    from cnnlab.nn.regularizers import ATTRIBUTE

    terms = [(m, name, reg) for m in model.modules() for name, reg in getattr(m, ATTRIBUTE, {}).items()]
    if not terms:
        return None

    def penalty(_: nn.Module) -> torch.Tensor:
        return sum(reg(getattr(m, name)) for m, name, reg in terms if getattr(m, name, None) is not None)

    return penalty


# ------------------------------------------------------------------------------- data


def _open(source: str, data: cfg.DataConfig, split: str, image_size=None, channels=None, like=None):
    """Open one set; ``like`` (the training set) fixes the task and the class list, so that
    label k means the same class in a validation set that lacks a class."""
    from cnnlab.data.sources import open_dataset

    return open_dataset(source, split=split, root=data.root, image_size=image_size or data.image_size,
                        channels=channels or data.channels, task=like.task if like is not None else data.task,
                        classes=like.classes if like is not None else None)


SMOKE_ENV = "CNNLAB_EXAMPLES_SMOKE"
SMOKE_IMAGES = 256


def smoke(exp: cfg.Experiment) -> cfg.Experiment:
    """With $CNNLAB_EXAMPLES_SMOKE set (not '0'): one epoch on at most 256 images, so that
    every course example runs in seconds (the examples' test); unchanged otherwise."""
    if os.environ.get(SMOKE_ENV, "0") in ("", "0"):
        return exp
    limit = min(exp.data.limit or SMOKE_IMAGES, SMOKE_IMAGES)
    return exp.model_copy(update={"epochs": 1, "data": exp.data.model_copy(update={"limit": limit})})


def load_data(exp: cfg.Experiment, *, split_record: dict[str, Any] | None, image_size=None, channels=None):
    """(train set, validation set or None, split record or None) as the experiment asks,
    each cut to ``data.limit`` images spread evenly over it when that is set."""
    train, val, record = _load_data(exp, split_record=split_record, image_size=image_size, channels=channels)
    limit = exp.data.limit
    if limit is not None:
        train = train.subset(spread(len(train), limit))
        val = val.subset(spread(len(val), limit)) if val is not None else None
    return train, val, record


def spread(n: int, limit: int) -> np.ndarray:
    """``min(n, limit)`` indices spread evenly over ``range(n)``: every (n / limit)-th image.

    A folder set is stored class by class, so its first N images would be one class;
    every k-th keeps each class at its share (and is the same cut on every resume).
    """
    if limit >= n:
        return np.arange(n)
    return np.arange(limit) * n // limit


def _load_data(exp: cfg.Experiment, *, split_record: dict[str, Any] | None, image_size=None, channels=None):
    from cnnlab.data.sources import available_splits
    from cnnlab.data.split import apply_split, split_train_val

    data = exp.data
    train = _open(data.source, data, "train", image_size, channels)
    if len(train) == 0:
        raise CnnlabError("holds no usable image", where=data.source, fix="give a folder with images in class subfolders")
    if data.val:
        return train, _open(data.val, data, "train", train.image_shape[:2], train.image_shape[2], like=train), None
    if split_record is not None:
        tr, va = apply_split(train, split_record)
        return tr, va, split_record
    if data.val_split:
        return split_train_val(train, data.val_split, exp.seed)
    if "val" in available_splits(data.source, data.root):
        return train, _open(data.source, data, "val", train.image_shape[:2], train.image_shape[2], like=train), None
    return train, None, None


# ------------------------------------------------------------------------------ fit


def fit(data: str | None = None, model: Any = None, *, config: str | Path | None = None,
        out: str | Path | None = None, resume: str | Path | None = None, verbose: int = 1,
        data_root: str | Path | None = None, report: bool = False, **options: Any) -> History:
    """Train a model and return its history (Keras-like ``History``, plus ``run_dir`` and ``model``).

    ``data``: a built-in set name, an image folder or a CSV. ``model``: a zoo name,
    a spec file or dict, or None to pick one for the data. ``config``: an
    experiment file; keyword ``options`` override it with dotted names
    (``fit("shapes", epochs=5, **{"optimizer.lr": 0.01})``) or section dicts.
    ``resume``: a run folder to continue. ``verbose``: 1 bar, 2 a line per epoch, 0 quiet.
    ``data_root``: where built-in sets are looked up (default $CNNLAB_DATA, else ~/.cache/cnnlab).
    ``report``: also write the run's HTML report (``report.html``) at the end, as ``cnnlab train`` does
    (``cnnlab.report.write_report(run_dir)`` writes it any time later).
    """
    overrides: dict[str, Any] = {}
    if data is not None:
        overrides["data.source"] = str(data)
    if data_root is not None:
        overrides["data.root"] = str(data_root)
    if model is not None:
        overrides["model"] = model if not isinstance(model, Path) else str(model)
    if out is not None:
        overrides["out"] = str(out)
    for key, value in options.items():
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                overrides[f"{key}.{sub}"] = inner
        else:
            overrides[key] = value
    return run_experiment(config, overrides, resume=resume, verbose=verbose, report=report)


def lr_find(data: str | None = None, model: Any = None, *, config: str | Path | None = None,
            png: str | Path | None = None, steps: int = 100, start_lr: float = 1e-7, end_lr: float = 10.0,
            verbose: int = 1, data_root: str | Path | None = None, **options: Any):
    """The learning-rate range test (:mod:`cnnlab.train.lr_find`) on the experiment ``fit`` would run.

    Same arguments as :func:`fit` (``transfer.pretrained``, ``transfer.freeze`` ... included);
    nothing is trained or written except the plot ``png``. Returns an ``LRFindResult``
    (``.suggestion``, ``.lrs``, ``.losses``).
    """
    overrides: dict[str, Any] = {"data.source": str(data) if data is not None else None,
                                 "data.root": str(data_root) if data_root is not None else None,
                                 "model": str(model) if isinstance(model, Path) else model}
    for key, value in options.items():
        if isinstance(value, Mapping):
            overrides.update({f"{key}.{sub}": inner for sub, inner in value.items()})
        else:
            overrides[key] = value
    return run_experiment(config, overrides, verbose=verbose,
                          find_only={"png": png, "steps": steps, "start_lr": start_lr, "end_lr": end_lr})


def run_experiment(config_path: str | Path | None, overrides: Mapping[str, Any], *, resume: str | Path | None = None,
                   verbose: int = 1, flags: Mapping[str, str] | None = None, say=None, report: bool = False,
                   find_only: Mapping[str, Any] | None = None) -> Any:
    """Validate, prepare everything, then train in the run folder (see the module doc).

    ``optimizer.lr: find`` runs the learning-rate range test first and trains at its
    suggestion (saved in config.yaml, the plot as lr_find.png). ``find_only``
    ({png, steps, start_lr, end_lr}): run the test alone and return its result.

    Under torchrun (``RANK`` / ``WORLD_SIZE`` set) every process runs this with the
    same arguments: each loads the data, checks everything, takes its shard, and
    only rank 0 prints and writes (see :mod:`cnnlab.train.distributed`).
    """
    from cnnlab.data.loader import BatchLoader, make_preprocessing
    from cnnlab.train import distributed
    from cnnlab.train.losses import check_loss
    from cnnlab.train.state import seed_everything, state_files
    from cnnlab.train.trainer import resolve_device

    rank, world_size, local_rank = distributed.env_ranks()
    if rank != 0:
        verbose = 0  # only rank 0 prints
    say = say or (print if verbose else (lambda *_: None))
    split_record = None
    has_state = False
    recipe = None
    if resume is not None:
        run_dir = existing(resume, "dir", what="run folder", where=f"--resume {resume}",
                           fix="give the --out folder of an earlier `cnnlab train` run")
        if path_kind(run_dir / cfg.CONFIG_FILE) != "file":
            raise CnnlabError(f"is not a run folder (no {cfg.CONFIG_FILE})", where=f"--resume {resume}",
                              fix="give the --out folder of an earlier `cnnlab train` run")
        # A run killed (or crashed) before its first state resumes from the start, with any flag.
        has_state = bool(state_files(run_dir))
        if has_state:
            _refuse_changes_on_resume(run_dir, overrides, flags)
        exp = cfg.load_experiment(run_dir / cfg.CONFIG_FILE, overrides, flags)
        if path_kind(run_dir / SPLIT_FILE) == "file":
            split_record = _read_split(run_dir / SPLIT_FILE)
        if not has_state and verbose:
            say(f"notice: {run_dir} has no saved training state yet: training from the start")
    else:
        # The zoo model's own recipe fills what the user left unset (a resumed run re-uses its saved config).
        exp, recipe = apply_recipe(cfg.load_experiment(config_path, overrides, flags))
        exp = smoke(exp)
        run_dir = Path(exp.out) if exp.out else _fresh_run_dir(exp)
        check_output(run_dir, "dir", where=f"--out {run_dir}" if exp.out else str(run_dir))
        if path_kind(run_dir) == "dir" and any(run_dir.iterdir()):
            raise CnnlabError("the run folder already exists and is not empty", where=str(run_dir),
                              fix=f"continue it with --resume {run_dir}, or give another --out")
    device_flag = (flags or {}).get("device") if overrides.get("device") is not None else None
    device = distributed.rank_device(resolve_device(exp.device, where=device_flag or "device"), world_size, local_rank)
    from cnnlab.data.augment import Augment

    # Checked before any data is read: a bad option fails at once.
    augment = Augment.from_config(exp.augment) if exp.augment is not None else None
    picked: list[str] = [line] if recipe is not None and (line := recipe.line()) else []
    seed_everything(exp.seed)
    train_set, val_set, split_record = load_data(exp, split_record=split_record)

    task, classes = train_set.task, train_set.classes
    outputs = 1 if task == "regression" else len(classes)
    activation = "linear" if task == "regression" else "softmax"
    find_lr = find_only is not None or exp.optimizer.lr == "find"
    if exp.optimizer.lr == "find":  # a placeholder until the range test has spoken
        exp = exp.model_copy(update={"optimizer": exp.optimizer.model_copy(update={"lr": 1e-3})})
    transfer_notes: list[str] = []
    if exp.transfer.pretrained:
        module, arch, described, transfer_notes = _pretrained_model(exp, train_set.image_shape, outputs, activation)
    elif exp.model is None and resume is not None and (began := saved_auto_spec(run_dir)) is not None:
        # The auto model as this run began with it: a later cnnlab may pick another one.
        module, arch, described = _build_spec(began, exp.seed), {"kind": "spec", "spec": None}, "auto_cnn"
    else:
        module, arch, described = build_model(exp.model, exp.model_options, input_shape=train_set.image_shape,
                                              outputs=outputs, activation=activation, seed=exp.seed)
    want = tuple(int(v) for v in getattr(module, "input_shape", train_set.image_shape))
    if want != tuple(train_set.image_shape):  # a spec with its own input size: bring the images to it
        train_set, val_set, split_record = load_data(exp, split_record=split_record, image_size=want[:2], channels=want[2])
        picked.append(f"images resized to {want[0]}x{want[1]}x{want[2]} for the model")
    freeze = _freeze(exp, module)
    transfer_notes += freeze[1]
    if exp.model is None and not exp.transfer.pretrained:
        picked.insert(0, f"model {described} for {want[0]}x{want[1]}x{want[2]} images, "
                         f"{'regression' if task == 'regression' else f'{outputs} classes'}")
        augment_given = "augment" in exp.model_fields_set
        exp = auto_settings(exp, len(train_set), want)
        if not augment_given:
            augment = Augment.from_config(exp.augment)
            picked.append(f"augmentation zoom_range {exp.augment['zoom_range']:g}, cutout {exp.augment['cutout']} px "
                          "(so that the net learns whole objects: its class activation maps point at them)")

    preprocessing = make_preprocessing(train_set, standardize=exp.data.standardize,
                                       rescale=augment.rescale if augment is not None else None)
    # Several processes: each takes its shard of every epoch's global order (--batch-size per process).
    train = BatchLoader(train_set, exp.batch_size, shuffle=True, seed=exp.seed, device=device, augment=augment,
                        preprocessing=preprocessing, rank=rank, world_size=world_size)
    val = (BatchLoader(val_set, max(exp.batch_size, 256), shuffle=False, device=device, preprocessing=preprocessing,
                       rank=rank, world_size=world_size)
           if val_set is not None and len(val_set) >= world_size else None)

    head = check_model_output(module, train, task, outputs, described)
    loss_name = exp.loss.name or default_loss(task, head)
    check_loss(loss_name, task, head.units)  # before the run folder exists: a wrong loss leaves nothing behind
    metrics = exp.metrics or (["mae"] if task == "regression" else
                              (["accuracy", "top5_accuracy"] if outputs > 5 else ["accuracy"]))
    # Every rank has checked everything: join the group (then DDP makes rank 0's weights everyone's).
    world = distributed.init(device)
    try:
        return _train(exp, module, head, train, val, train_set, loss_name, metrics, run_dir, device, verbose, arch,
                      preprocessing, task, world, picked, split_record, has_state, say, resume, report,
                      {"plan": freeze[0], "notes": transfer_notes, "find_lr": find_lr, "find_only": find_only})
    finally:
        distributed.shutdown(world)


def _train(exp, module, head, train, val, train_set, loss_name, metrics, run_dir, device, verbose, arch,
           preprocessing, task, world, picked, split_record, has_state, say, resume, report, transfer=None) -> Any:
    import numpy as np

    from cnnlab.train.state import seed_everything

    if world.distributed:  # each rank its own dropout masks (the weights come from rank 0 anyway)
        seed_everything(int(np.random.SeedSequence([exp.seed, world.rank]).generate_state(1)[0]))
    trainer = _make_trainer(exp, module, head, train, val, train_set, loss_name, metrics, run_dir, device, verbose,
                            arch, preprocessing, task, world, freeze_plan=transfer["plan"], say=say)
    found = None
    if transfer["find_lr"]:
        from cnnlab.train.lr_find import range_test, save_plot

        settings = dict(transfer["find_only"] or {})
        png = settings.pop("png", None)
        found = range_test(trainer, train, **{k: v for k, v in settings.items() if v is not None})
        if transfer["find_only"] is not None:
            if png is not None and world.is_main:
                save_plot(found, png)
            return found
        exp = exp.model_copy(update={"optimizer": exp.optimizer.model_copy(update={"lr": found.suggestion})})
        trainer = _make_trainer(exp, module, head, train, val, train_set, loss_name, metrics, run_dir, device,
                                verbose, arch, preprocessing, task, world, freeze_plan=transfer["plan"], say=say)
        picked.append(f"learning rate {found.suggestion:.3g} from the range test "
                      f"({len(found.lrs)} steps, {found.lrs[0]:.0e} to {found.lrs[-1]:.1e}; plot in lr_find.png)")
    batch = f"batch {exp.batch_size}" if not world.distributed else \
        f"batch {exp.batch_size} per process (global batch {exp.batch_size * world.world_size})"
    if exp.model is None or exp.loss.name is None:
        picked.append(f"loss {loss_name}, metrics {', '.join(metrics)}, optimizer {exp.optimizer.name} "
                      f"lr {exp.optimizer.lr:g} ({exp.schedule.name} schedule), "
                      f"{exp.epochs} epochs of {batch}")
    if verbose and picked and not has_state:
        for line in picked:
            say(f"picked: {line}")
    if verbose and transfer["notes"] and not has_state:
        for line in transfer["notes"]:
            say(f"transfer: {line}")

    # Everything checked: now the run folder may be written (by rank 0 alone).
    if not has_state and world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / cfg.CONFIG_FILE, cfg.dump(exp))
        if exp.model is None and not exp.transfer.pretrained:
            atomic_write_text(run_dir / AUTO_MODEL_FILE, json.dumps(architecture_of(module, arch)["spec"]) + "\n")
        if split_record is not None:
            atomic_write_text(run_dir / SPLIT_FILE, json.dumps(split_record) + "\n")
        if found is not None:
            from cnnlab.train.lr_find import save_plot

            save_plot(found, run_dir / "lr_find.png")
    if verbose:
        where = f"{trainer.device.type}, {trainer.bundle_meta['training_precision']}"
        if world.distributed:
            where += f", {world.describe()}, global batch {exp.batch_size * world.world_size} = " \
                     f"{world.world_size} x {exp.batch_size}"
        say(f"run folder: {run_dir} ({where})")
    from cnnlab.train import runlog

    # run.json and the report are the run folder's: written by one process (rank 0 under torchrun).
    main_process = world.is_main
    if main_process:
        started = runlog.start_session(run_dir, resumed=resume is not None, device=str(trainer.device),
                                       precision=trainer.bundle_meta["training_precision"],
                                       epochs_before=_epochs_logged(run_dir))
    rows = trainer.fit(train, val, epochs=exp.epochs, resume=has_state)
    if main_process:
        runlog.end_session(run_dir, started, epochs_after=len(rows))
        if report:
            _write_report(run_dir, say, verbose)
    return History(rows, run_dir, trainer.model.eval(), picked)


def _epochs_logged(run_dir: Path) -> int:
    try:
        return max(len((run_dir / "history.csv").read_text(encoding="utf-8").splitlines()) - 1, 0)
    except OSError:
        return 0


def _write_report(run_dir: Path, say, verbose: int) -> None:
    """The run's HTML report; a failure to write it never loses the run (one line, then on)."""
    # The one upward call (train -> report), kept inside the function: report
    # depends on inference, never the other way round at import time.
    try:
        from cnnlab.report import write_report

        path = write_report(run_dir)
    except Exception as error:  # the run is saved; the report can be written later
        say(f"report: not written ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}); "
            f"write it with `cnnlab report {run_dir}`")
        return
    if verbose:
        say(f"report: {path}")


# What may change when a run with a saved state is resumed: how long and where it trains, not
# what it trains (a new model, optimiser, loss or data would not fit the saved state, or would
# silently make another experiment). The data root may move.
RESUME_MAY_CHANGE = ("epochs", "device", "precision", "compile", "checkpoint_every", "data.root")


# Schedules laid out over the whole run: more epochs would run past their end.
SIZED_SCHEDULES = ("onecycle", "cosine")


def _refuse_changes_on_resume(run_dir: Path, overrides: Mapping[str, Any], flags: Mapping[str, str] | None) -> None:
    saved = cfg.load_experiment(run_dir / cfg.CONFIG_FILE).model_dump(mode="json")
    epochs = overrides.get("epochs")
    if epochs is not None and epochs != saved["epochs"] and saved["schedule"]["name"] in SIZED_SCHEDULES:
        name = (flags or {}).get("epochs", "epochs")
        raise CnnlabError(f"{name} {epochs}: the run's {saved['schedule']['name']} schedule is laid out over its "
                          f"{saved['epochs']} epochs, so it cannot be resumed for another number",
                          where=f"--resume {run_dir}",
                          fix=f"resume without {name}, or start a new run (--out) with --epochs {epochs}")
    for key, value in overrides.items():
        if value is None or key in RESUME_MAY_CHANGE:
            continue
        current: Any = saved
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if _same(current, value):
            continue
        name = (flags or {}).get(key, key)
        raise CnnlabError(f"{name} would change the run being resumed (saved: {shorten(repr(current), 80)}, "
                          f"given: {shorten(repr(value), 80)}); its saved state only fits the run as it was",
                          where=f"--resume {run_dir}",
                          fix=f"drop {name} to continue the run (only {', '.join(RESUME_MAY_CHANGE)} may change), "
                              f"or start a new run with another --out")


def _same(saved: Any, given: Any) -> bool:
    if isinstance(given, tuple):
        given = list(given)
    if isinstance(saved, (int, float)) and isinstance(given, (int, float)) and not isinstance(given, bool):
        return float(saved) == float(given)
    return saved == given


def _read_split(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else shorten(str(error), 120)
        raise CnnlabError(f"the saved train / validation split is not readable JSON ({reason})", where=str(path),
                          fix="delete it to make a new split (the validation set will change)") from None


def _fresh_run_dir(exp: cfg.Experiment) -> Path:
    stem = Path(exp.data.source).stem.replace(" ", "_")[:80] or "run"  # the name must fit the file system
    model = exp.model if isinstance(exp.model, str) else "auto"
    base = Path("runs") / f"{stem}-{Path(model).stem[:80]}"
    candidate, n = base, 1
    while exists(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


# Experiment ``precision`` -> Trainer ``mixed_precision`` (None: bf16 on CUDA and on CPUs with native bf16).
MIXED_PRECISION = {"auto": None, "fp32": False, "bf16": True}


def default_loss(task: str, head: OutputHead) -> str:
    if task == "regression":
        return "mse"
    return "binary_crossentropy" if head.units == 1 else "sparse_categorical_crossentropy"


def check_model_output(module: nn.Module, loader: Any, task: str, outputs: int, described: str) -> OutputHead:
    """Refuse a model whose output does not fit the data (10 classes, 2-unit head)."""
    x, _ = next(loader.iter_epoch(0)) if hasattr(loader, "iter_epoch") else next(iter(loader))
    device = next(module.parameters()).device
    module.to(x.device)
    try:
        head = find_output_head(module, x[:2])
    except RuntimeError as error:
        raise CnnlabError(f"the model cannot run on the data's images {tuple(x.shape[1:])} (NCHW): "
                          f"{str(error).splitlines()[0]}", where=f"model {described}",
                          fix="give the model the data's input shape, or set data.image_size / data.channels") from None
    finally:
        module.to(device)
    ok = head.units == outputs or (task == "classification" and outputs == 2 and head.units == 1)
    if not ok:
        what = "a regression target" if task == "regression" else f"{outputs} classes"
        raise CnnlabError(f"the model outputs {head.units} value(s) per image but the data has {what}",
                          where=f"model {described}",
                          fix=f"end the model with Dense({outputs}) (num_classes={outputs}), or use other data")
    return head.for_task(task)


def _pretrained_model(exp: cfg.Experiment, image_shape: Sequence[int], outputs: int,
                      activation: str) -> tuple[nn.Module, dict[str, Any], str, list[str]]:
    """The model of ``transfer.pretrained`` rebuilt for the data (see :mod:`cnnlab.train.transfer`)."""
    from cnnlab.train.transfer import build_transfer_model, read_pretrained

    pretrained = read_pretrained(exp.transfer.pretrained)
    made = build_transfer_model(pretrained, exp.model, exp.model_options, input_shape=image_shape, outputs=outputs,
                                activation=activation, seed=exp.seed)
    notes = [f"{made.described}: {made.loaded} tensors loaded, new head ({len(made.fresh)} tensors) "
             f"for {outputs} output{'s' if outputs != 1 else ''}"]
    if made.adapted:
        notes.append(f"first convolution {made.adapted[0]} adapted to {int(image_shape[2])} input channel(s) "
                     "(kernels summed over the pretrained channels)" if int(image_shape[2]) == 1 else
                     f"first convolution {made.adapted[0]} adapted to {int(image_shape[2])} input channels")
    return made.module, made.architecture, made.described, notes


def _freeze(exp: cfg.Experiment, module: nn.Module) -> tuple[Any, list[str]]:
    """Apply ``transfer.freeze``; (the plan, lines for the run's log)."""
    from cnnlab.train.transfer import apply_freeze, freeze_plan, frozen_summary

    t = exp.transfer
    plan = freeze_plan(module, t.freeze_setting)
    if not plan:
        return plan, ([frozen_summary(module)] if t.pretrained else [])
    apply_freeze(plan, train_bn=t.train_bn)
    names = plan.names
    shown = ", ".join(names[:6]) + (f" ... ({len(names)} in all)" if len(names) > 6 else "")
    when = f" for the first {t.freeze_epochs} epoch(s), then all layers train" if t.freeze_epochs else ""
    bn = "" if t.train_bn else "; their batch norms in inference mode"
    return plan, [f"frozen: {shown}{when}{bn}", frozen_summary(module)]


def _make_trainer(exp, module, head, train, val, train_set, loss_name, metrics, run_dir, device, verbose, arch,
                  preprocessing, task, world=None, freeze_plan=None, say=None):
    from cnnlab.train.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN
    from cnnlab.train.losses import make_loss, resolve_class_weight
    from cnnlab.train.optim import make_optimizer, make_schedule, trainable_parameters
    from cnnlab.train.trainer import Trainer

    counts = list((train_set.class_counts() or {}).values()) or None
    weight = resolve_class_weight(exp.loss.class_weight, counts, len(train_set.classes or [1]), train_set.classes)
    loss = make_loss(loss_name, label_smoothing=exp.loss.label_smoothing, class_weight=weight,
                     huber_delta=exp.loss.huber_delta)
    o = exp.optimizer
    from cnnlab.train.transfer import Unfreeze, param_groups

    t = exp.transfer
    groups = param_groups(module, backbone_lr_mult=t.backbone_lr_mult, lr=o.lr) if t.backbone_lr_mult != 1.0 \
        else trainable_parameters(module)
    optimizer = make_optimizer(o.name, groups, lr=o.lr, momentum=o.momentum,
                               nesterov=o.nesterov, weight_decay=o.weight_decay)
    s = exp.schedule
    schedule = make_schedule(s.name, optimizer, epochs=exp.epochs, steps_per_epoch=len(train), step_size=s.step_size,
                             gamma=s.gamma, eta_min=s.eta_min, pct_start=s.pct_start, factor=s.factor,
                             patience=s.patience, monitor=s.monitor, interval=s.interval, decay=s.decay)
    c = exp.callbacks
    callbacks: list[Any] = []
    if c.csv_logger:
        callbacks.append(CSVLogger())
    if c.terminate_on_nan:
        callbacks.append(TerminateOnNaN())
    if c.reduce_lr_on_plateau is not None:
        callbacks.append(ReduceLROnPlateau(**c.reduce_lr_on_plateau.model_dump()))
    if c.early_stopping is not None:
        callbacks.append(EarlyStopping(**c.early_stopping.model_dump()))
    if c.model_checkpoint is not None and val is not None:
        callbacks.append(ModelCheckpoint(**c.model_checkpoint.model_dump()))
    if freeze_plan and t.freeze_epochs:
        callbacks.append(Unfreeze(freeze_plan, t.freeze_epochs, backbone_lr_mult=t.backbone_lr_mult,
                                  train_bn=t.train_bn, say=say if verbose else None))
    meta = {"architecture": architecture_of(module, arch), "classes": train_set.classes,
            "input_shape": list(train_set.image_shape), "preprocessing": preprocessing,
            "loss": loss_name, "seed": exp.seed}
    if t.pretrained or freeze_plan:
        meta["transfer"] = {"pretrained": t.pretrained, "freeze": t.freeze_setting, "freeze_epochs": t.freeze_epochs,
                            "backbone_lr_mult": t.backbone_lr_mult, "train_bn": t.train_bn}
    trainer = Trainer(module, loss, optimizer, schedule=schedule, metrics=metrics, callbacks=callbacks,
                      device=device, run_dir=run_dir, checkpoint_every=exp.checkpoint_every, verbose=verbose,
                      regularization=make_regularization(module), task=task, bundle_meta=meta,
                      compile=exp.compile, mixed_precision=MIXED_PRECISION[exp.precision], world=world,
                      sync_bn=exp.sync_bn)
    trainer.bundle_meta["training_precision"] = "bf16" if trainer.mixed_precision else "fp32"
    trainer.head = head
    return trainer
