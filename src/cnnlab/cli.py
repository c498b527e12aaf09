"""The command line: thin; every command calls a public function of the package.

Errors a user can cause are :class:`cnnlab.CnnlabError`: printed as one line on
stderr, exit status 2, no traceback. Heavy imports (torch) happen inside the
commands so that ``cnnlab --help`` stays instant.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cnnlab import __version__
from cnnlab.errors import CnnlabError

app = typer.Typer(
    name="cnnlab",
    help="Convolutional neural networks on images: filters, models, training, explanations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cnnlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """cnnlab: from one convolution to a trained, explained, exported model."""


# Each area adds its commands in its own section below; imports of the package
# happen inside the command functions.

# --- convolution lab: filter, match, shape, demo (cnnlab.ops) ---


@app.command("filter")
def filter_command(
    image: Annotated[str, typer.Argument(help="Image file (PNG, JPEG, ...); colour is filtered per channel.")],
    kernel: Annotated[
        str,
        typer.Option(
            "--kernel",
            "-k",
            help='Kernel: a name (sobel-x, sobel-y, box:5, box-ones, gaussian:5:1.0, gaussian-121, sharpen, '
            'diagonal-45, diagonal-135, laplacian-4, laplacian-8, emboss, identity) or numbers "0 -1 0; -1 5 -1; 0 -1 0".',
        ),
    ],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the filtered image (.png).")],
    mode: Annotated[str, typer.Option(help="corr: cross-correlation (CNN layers, cv2.filter2D); conv: flips the kernel.")] = "corr",
    padding: Annotated[str, typer.Option(help="same, valid, full, N, or TOP,BOTTOM,LEFT,RIGHT.")] = "same",
    border: Annotated[str, typer.Option(help="What the padding holds: zeros, reflect, symmetric, replicate, wrap.")] = "reflect",
    stride: Annotated[str, typer.Option(help="Step between outputs: N or ROWS,COLS.")] = "1",
    dilation: Annotated[str, typer.Option(help="Spacing of the kernel taps: N or ROWS,COLS.")] = "1",
    gray: Annotated[bool, typer.Option("--gray", help="Convert the image to gray first.")] = False,
    scale: Annotated[str, typer.Option(help="To 8 bits: auto, clip, minmax or abs (auto: abs for edge kernels).")] = "auto",
    compare: Annotated[Optional[str], typer.Option(help="Also write a before / kernel / after figure here (.png).")] = None,
) -> None:
    """Convolve or cross-correlate an image with a kernel."""
    from cnnlab.ops.lab import filter_image

    done = filter_image(
        image, kernel, output, mode=mode, padding=padding, border=border, stride=stride,
        dilation=dilation, gray=gray, scale=scale, compare=compare,
    )  # fmt: skip
    typer.echo(done.summary())


@app.command("match")
def match_command(
    image: Annotated[str, typer.Argument(help="The photo to search.")],
    template: Annotated[str, typer.Argument(help="The piece to find (smaller than the photo).")],
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the score heat map here (.png) and the boxed photo beside it.")] = None,
    box: Annotated[Optional[str], typer.Option(help="Where to write the photo with the match boxed (default: <output>-box.png).")] = None,
    color: Annotated[bool, typer.Option("--color", help="Match in colour instead of gray.")] = False,
) -> None:
    """Find a template in a photo by normalised cross-correlation (OpenCV TM_CCOEFF_NORMED)."""
    from cnnlab.ops.lab import match_images

    typer.echo(match_images(image, template, output, box_output=box, color=color).summary())


@app.command("shape")
def shape_command(
    input: Annotated[str, typer.Option("--input", "-i", help="Input H x W x C, e.g. 28x28x1.")],  # noqa: A002
    kernel: Annotated[str, typer.Option("--kernel", "-k", help="Kernel size K or KH x KW, e.g. 5 or 5x3.")],
    stride: Annotated[str, typer.Option(help="N or ROWS,COLS.")] = "1",
    padding: Annotated[str, typer.Option(help="valid, same, full, N or TOP,BOTTOM,LEFT,RIGHT.")] = "valid",
    dilation: Annotated[str, typer.Option(help="N or ROWS,COLS.")] = "1",
    filters: Annotated[int, typer.Option(help="Number of filters (output channels).")] = 1,
) -> None:
    """Output shape of a convolution, with the formula worked step by step."""
    from cnnlab.ops.lab import shape_report

    typer.echo(shape_report(input, kernel, stride=stride, padding=padding, dilation=dilation, filters=filters))


@app.command("demo")
def demo_command(
    out: Annotated[str, typer.Option("--out", help="Folder to write the demo files to.")] = "lab-demo",
) -> None:
    """A short convolution lab on a picture made in code: filters, a template match, output shapes."""
    from cnnlab.ops.lab import run_demo

    for path, what in run_demo(out):
        typer.echo(f"wrote {path}: {what}")



# --- models: summary, models (cnnlab.spec, cnnlab.models) ---


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise CnnlabError(f"bad input shape {text!r}", where="--input-shape", fix="write height,width,channels, e.g. 224,224,3")
    return shape


def _zoo_model(name: str, input_shape: tuple[int, ...] | None):  # noqa: ANN202
    """A registered zoo model, or a clear error when neither a file nor a zoo name."""
    try:
        from cnnlab.models import create, names
    except ImportError:
        create = names = None  # the zoo is optional here
    looks_like_file = any(name.endswith(s) for s in (".yaml", ".yml", ".json")) or "/" in name
    if create is None or looks_like_file or name not in names():
        known = f" or a zoo model ({', '.join(sorted(names()))})" if names is not None and not looks_like_file else ""
        raise CnnlabError(f"no spec file {name!r}", where="summary", fix=f"give the path of a .yaml / .json spec{known}")
    return create(name, **({"input_shape": input_shape} if input_shape else {}))


@app.command("summary")
def summary_command(
    spec: Annotated[str, typer.Argument(help="A model spec (.yaml / .json), or the name of a zoo model.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    input_shape: Annotated[Optional[str], typer.Option("--input-shape", help="H,W,C for a zoo model (default: its own).")] = None,
) -> None:
    """Print a model's layers, output shapes and parameter counts, as Keras's model.summary()."""
    import json
    from pathlib import Path

    from cnnlab.spec import SpecError, load_spec, summary

    shape = _parse_shape(input_shape) if input_shape else None
    target = load_spec(spec) if Path(spec).is_file() else _zoo_model(spec, shape)
    try:
        result = summary(target, input_shape=shape)
    except SpecError as error:
        # The table up to the failing layer, then the one-line error (main prints it).
        if error.partial is not None and not as_json:
            error.partial.print()
        raise
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        result.print()


@app.command("models")
def models_command(
    name: Annotated[Optional[str], typer.Argument(help="A zoo model: show its details and options.")] = None,
    family: Annotated[Optional[str], typer.Option("--family", help="Only this family (lenet, notes, vgg, ...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the zoo: every model with its input size, parameter count and reference."""
    import json

    from cnnlab.models import FAMILIES, info, names

    if family is not None and family not in FAMILIES:
        raise CnnlabError(f"unknown family {family!r}", where="--family", fix=f"use one of {', '.join(FAMILIES)}")
    entries = [info(name)] if name else [info(n) for n in names(family)]
    rows = [
        {
            "name": e.name,
            "family": e.family,
            "input_shape": list(e.input_shape),
            "min_size": e.min_size,
            "num_classes": e.num_classes,
            "params": e.params,
            "trainable_params": e.trainable,
            "description": e.description,
            "reference": e.reference,
            "options": e.options,
            "torchvision_weights": e.torchvision is not None,
        }
        for e in entries
    ]
    if as_json:
        typer.echo(json.dumps(rows if name is None else rows[0], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if name:
        row = rows[0]
        for key in ("name", "description", "family", "reference"):
            console.print(f"{key}: {row[key]}", markup=False)
        height, width, channels = row["input_shape"]
        console.print(f"input: {height}x{width}x{channels} (smallest {row['min_size']}x{row['min_size']})", markup=False)
        console.print(f"classes: {row['num_classes']}", markup=False)
        console.print(f"params: {row['params']:,} (trainable {row['trainable_params']:,})", markup=False)
        options = ", ".join(f"{k}={v!r}" for k, v in row["options"].items()) or "none"
        console.print(f"options: {options}", markup=False)
        console.print(f"torchvision weights: {'yes' if row['torchvision_weights'] else 'no'}", markup=False)
        return
    table = Table(title=f"cnnlab zoo: {len(rows)} models (counts as Keras: BN moving statistics non-trainable)")
    table.add_column("name", no_wrap=True)
    for column in ("input", "params", "trainable"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("reference", overflow="fold")
    for row in rows:
        table.add_row(
            row["name"],
            "x".join(map(str, row["input_shape"])),
            f"{row['params']:,}",
            f"{row['trainable_params']:,}",
            row["reference"],
        )
    console.print(table)


# --- data: data inspect (cnnlab.data) ---

data_app = typer.Typer(help="Data sets: inspect a folder, CSV or built-in set; download built-in sets.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


def _augment_options(items: list[str] | None) -> dict | None:
    """``--augment KEY=VALUE`` (repeatable; values in YAML: 0.2, true, [0.8, 1.2]) or a YAML/JSON file."""
    from pathlib import Path

    import yaml

    if not items:
        return None
    options: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep and Path(item).is_file():
            try:
                loaded = yaml.safe_load(Path(item).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as error:
                raise CnnlabError(f"cannot read it ({error})", where=item, fix="give a YAML or JSON mapping") from None
            loaded = loaded.get("augment", loaded) if isinstance(loaded, dict) else loaded
            if not isinstance(loaded, dict):
                raise CnnlabError("is not a mapping of augmentation options", where=item,
                                  fix="write e.g. `rotation_range: 10` lines")
            options.update(loaded)
            continue
        if not sep or not key.strip():
            raise CnnlabError(f"{item!r} is not KEY=VALUE", where="--augment",
                              fix="e.g. --augment rotation_range=20 --augment horizontal_flip=true")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise CnnlabError(f"cannot read the value of {key!r}", where="--augment", fix="e.g. zoom_range=[0.8,1.2]") from None
    return options


@data_app.command("inspect")
def data_inspect_command(
    source: Annotated[str, typer.Argument(help="Built-in set (shapes, mnist, ...), image folder, .tar.gz or CSV.")],
    split: Annotated[str, typer.Option(help="train, test or val.")] = "train",
    data: Annotated[Optional[str], typer.Option("--data", help="Data root (default $CNNLAB_DATA or ~/.cache/cnnlab).")] = None,
    out: Annotated[Optional[str], typer.Option(help="Folder for samples.png / augmented.png (default inspect-NAME).")] = None,
    per_class: Annotated[int, typer.Option("--per-class", min=1, max=32, help="Samples per class in the grid.")] = 8,
    augment: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE (Keras names) or a YAML file; repeatable: also writes augmented.png.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the samples shown.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Classes, counts (imbalance flagged), image sizes and modes, skipped files, and PNG grids of samples."""
    import json
    import re
    from pathlib import Path

    from cnnlab.data.inspect import inspect_dataset

    options = _augment_options(augment)
    if options is not None:
        from cnnlab.data.augment import Augment

        Augment.from_config(options)  # bad options fail before the data set is read
    folder = out or f"inspect-{re.sub(r'[^A-Za-z0-9._-]+', '_', Path(source).name or source)}"
    report = inspect_dataset(source, split=split, root=data, out=folder, per_class=per_class, augment=options, seed=seed,
                             progress=not as_json)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_inspect(report)


def _print_inspect(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)  # long paths stay on one line (greppable, testable)
    h, w, c = report["image_shape"]
    console.print(f"[bold]{report['source']}[/bold] ({report['split']}): {report['images']} images, "
                  f"{report['task']}, decoded to {h}x{w}x{c}")
    if "counts" in report:
        table = Table("class", "images", title="classes")
        for name, count in report["counts"].items():
            table.add_row(name, str(count) + ("  [red](no valid image)[/red]" if count == 0 else ""))
        console.print(table)
        ratio = report["imbalance_ratio"]
        if report["imbalanced"]:
            why = "a class has no image" if ratio is None else f"largest/smallest = {ratio:.2f}"
            console.print(f"[yellow]imbalanced:[/yellow] {why} (consider class weights or more data)")
    else:
        t = report["targets"]
        console.print(f"targets: min {t['min']:.4g}, max {t['max']:.4g}, mean {t['mean']:.4g}, std {t['std']:.4g}")
    if report["original_sizes"]:
        sizes = ", ".join(f"{s['height']}x{s['width']} ({s['count']})" for s in report["original_sizes"][:6])
        more = f" and {len(report['original_sizes']) - 6} more" if len(report["original_sizes"]) > 6 else ""
        console.print(f"original sizes (HxW): {sizes}{more}")
        console.print("modes: " + ", ".join(f"{m} ({n})" for m, n in report["original_modes"].items()))
    if report["skipped"]:
        table = Table("file", "reason", title=f"skipped ({len(report['skipped'])})")
        for item in report["skipped"][:50]:
            table.add_row(item["file"], item["reason"])
        console.print(table)
        if len(report["skipped"]) > 50:
            console.print(f"... and {len(report['skipped']) - 50} more (see --json)")
    for key in ("samples_png", "augmented_png"):
        if key in report:
            console.print(f"wrote {report[key]}")


@data_app.command("download")
def data_download_command(
    name: Annotated[str, typer.Argument(help="mnist, fashion-mnist, cifar10 or cifar100.")],
    data: Annotated[Optional[str], typer.Option("--data", help="Data root (default $CNNLAB_DATA or ~/.cache/cnnlab).")] = None,
) -> None:
    """Download a built-in set's official files (sha256-checked) into the data root."""
    from cnnlab.data.remote import download
    from cnnlab.data.roots import data_root

    for path in download(name.lower(), data_root(data) / name.lower()):
        typer.echo(f"ok {path}")


# --- training: train, evaluate, predict (cnnlab.train) ---

# Flag -> dotted field of the experiment file (so an error in a flag names the flag).
_TRAIN_FLAGS = {
    "model": "--model", "epochs": "--epochs", "batch_size": "--batch-size", "optimizer.name": "--optimizer",
    "optimizer.lr": "--lr", "optimizer.momentum": "--momentum", "optimizer.weight_decay": "--weight-decay",
    "schedule.name": "--schedule", "loss.name": "--loss", "loss.label_smoothing": "--label-smoothing",
    "data.val_split": "--val-split", "augment": "--augment", "seed": "--seed", "out": "--out",
    "device": "--device", "checkpoint_every": "--checkpoint-every", "data.source": "DATA", "data.root": "--data",
    "precision": "--precision", "sync_bn": "--sync-bn",
}


def _parse_augment(items: list[str] | None) -> dict | None:
    import yaml

    if not items:
        return None
    options: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CnnlabError(f"{item!r} is not KEY=VALUE", where="--augment",
                              fix="e.g. --augment rotation_range=10 --augment horizontal_flip=true")
        options[key.strip()] = yaml.safe_load(value)
    return options


@app.command("train")
def train_command(
    ctx: typer.Context,
    data: Annotated[Optional[str], typer.Argument(help="Built-in set (shapes, mnist, ...), image folder or CSV.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Zoo name or spec file; default: picked for the data.")] = None,
    data_root: Annotated[Optional[str], typer.Option("--data", help="Data root (default $CNNLAB_DATA or ~/.cache/cnnlab).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs to train.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Images per step.")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="sgd, adam, adamw or rmsprop.")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Learning rate.")] = None,
    momentum: Annotated[Optional[float], typer.Option(help="SGD / RMSprop momentum.")] = None,
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", help="L2 weight decay.")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="constant, step, exponential, cosine, onecycle, plateau.")] = None,
    loss: Annotated[Optional[str], typer.Option(help="Loss name (default: from the task).")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option("--label-smoothing")] = None,
    val_split: Annotated[Optional[float], typer.Option("--val-split", help="Validation fraction (0 = none).")] = None,
    augment: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE, Keras ImageDataGenerator names; repeatable.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    out: Annotated[Optional[str], typer.Option(help="Run folder (default runs/DATA-MODEL).")] = None,
    resume: Annotated[Optional[str], typer.Option(help="Continue the run in this folder.")] = None,
    config: Annotated[Optional[str], typer.Option(help="Experiment file (YAML/JSON); flags override it.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:1 ...")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    precision: Annotated[Optional[str], typer.Option(help="auto (bf16 autocast on CUDA and on CPUs with AVX-512 BF16 / AMX, else fp32), fp32 or bf16.")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="Steps between mid-epoch states.")] = None,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="-q: one line per epoch; -qq: errors only.")] = 0,
    nproc: Annotated[Optional[int], typer.Option("--nproc", help="Processes on this machine (DDP via torch's launcher, as torchrun --nproc-per-node): one per GPU, or CPU processes.")] = None,
    sync_bn: Annotated[bool, typer.Option("--sync-bn", help="Batch norm statistics over all processes (SyncBatchNorm; CUDA only).")] = False,
) -> None:
    """Train a model on DATA (or --config FILE) into a run folder; --resume RUN continues one."""
    from cnnlab.train import distributed
    from cnnlab.train.api import run_experiment

    if nproc is not None and nproc != 1:  # the same command, once per process, under torch's launcher
        argv = _command_line(ctx, drop={"nproc"})
        raise typer.Exit(distributed.launch(nproc, ["train", *argv], run_hint=resume or out))

    if resume is not None and (config is not None or data is not None):
        raise CnnlabError("--resume continues a run with its saved config", where="--resume",
                          fix="drop DATA / --config (flags such as --epochs still apply)")
    if data is None and config is None and resume is None:
        raise CnnlabError("no data given", where="DATA", fix="e.g. `cnnlab train shapes` or `cnnlab train --config exp.yaml`")
    overrides = {"data.source": data, "data.root": data_root, "model": model, "epochs": epochs, "batch_size": batch_size,
                 "optimizer.name": optimizer, "optimizer.lr": lr, "optimizer.momentum": momentum,
                 "optimizer.weight_decay": weight_decay, "schedule.name": schedule, "loss.name": loss,
                 "loss.label_smoothing": label_smoothing, "data.val_split": val_split,
                 "augment": _parse_augment(augment), "seed": seed, "out": out, "device": device,
                 "checkpoint_every": checkpoint_every, "compile": True if compile else None,
                 "precision": precision, "sync_bn": True if sync_bn else None}
    verbose = {0: 1, 1: 2}.get(quiet, 0)
    with distributed.rank_errors():
        history = run_experiment(config, overrides, resume=resume, verbose=verbose, flags=_TRAIN_FLAGS,
                                 say=lambda text: typer.echo(text))
    if verbose and history.rows and distributed.env_ranks()[0] == 0:
        last = history.rows[-1]
        shown = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "learning_rate")
        typer.echo(f"done: {history.epochs} epoch(s); {shown}; model in {history.run_dir}")


def _command_line(ctx: typer.Context, drop: set[str]) -> list[str]:
    """The options and arguments given to this command, as a command line again (for --nproc)."""
    argv: list[str] = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name in drop or getattr(source, "name", None) not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params[param.name]
        if param.param_type_name == "argument":
            argv.append(str(value))
            continue
        opt = max(param.opts, key=len)
        if getattr(param, "count", False):
            argv += [opt] * int(value)
        elif getattr(param, "is_flag", False):
            argv.append(opt if value else (param.secondary_opts or [opt])[0])
        elif getattr(param, "multiple", False):
            for item in value:
                argv += [opt, str(item)]
        else:
            argv += [opt, str(value)]
    return argv


@app.command("evaluate")
def evaluate_command(
    model: Annotated[str, typer.Argument(help="Run folder or bundle.")],
    data: Annotated[str, typer.Argument(help="Built-in set, image folder or CSV.")],
    data_root: Annotated[Optional[str], typer.Option("--data", help="Data root (default $CNNLAB_DATA or ~/.cache/cnnlab).")] = None,
    split: Annotated[Optional[str], typer.Option(help="train, test or val (default: test when the data has one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    png: Annotated[Optional[str], typer.Option(help="Confusion matrix PNG (default: RUN/evaluation/confusion-DATA.png).")] = None,
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none, flip or flip_translate.")] = "none",
) -> None:
    """Accuracy, top-1/top-5 error, per-class precision/recall/F1 and confusion matrix (or MAE/MSE)."""
    import json
    from pathlib import Path

    from cnnlab.data.sources import available_splits, open_dataset
    from cnnlab.train.api import load
    from cnnlab.train.evaluate import evaluate_model, save_confusion_png

    loaded = load(model)
    pre = loaded.preprocessing
    chosen = split or ("test" if "test" in available_splits(data, root=data_root) else "train")
    imageset = open_dataset(data, split=chosen, root=data_root, image_size=tuple(pre["image_size"]), channels=int(pre["channels"]),
                            task=loaded.task)
    result = evaluate_model(loaded, imageset, tta=tta)
    result["data"], result["split"] = data, chosen
    if loaded.task != "regression":
        target = Path(png) if png else Path(model) / "evaluation" / f"confusion-{Path(data).stem}-{chosen}.png"
        result["confusion_png"] = str(save_confusion_png(result, target))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"{data} ({chosen}): {result['images']} images")
    if loaded.task == "regression":
        console.print(f"MAE {result['mae']:.4f}  MSE {result['mse']:.4f}  RMSE {result['rmse']:.4f}")
        return
    console.print(f"accuracy {result['accuracy']:.4f}  top-1 error {result['top1_error']:.4f}  "
                  f"top-5 error {result['top5_error']:.4f}")
    scores = Table("class", "precision", "recall", "F1", "support")
    for name, row in result["per_class"].items():
        scores.add_row(name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", str(row["support"]))
    console.print(scores)
    matrix = Table("true \\ predicted", *result["classes"])
    for name, row in zip(result["classes"], result["confusion_matrix"]):
        matrix.add_row(name, *(str(v) for v in row))
    console.print(matrix)
    console.print(f"confusion matrix image: {result['confusion_png']}")


@app.command("predict")
def predict_command(
    model: Annotated[str, typer.Argument(help="Run folder or bundle.")],
    images: Annotated[list[str], typer.Argument(help="Image files or folders.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Show the k most likely classes.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """The class and its probability (top-k) for each image, or the number for regression."""
    import csv
    import json

    from cnnlab.train.api import load
    from cnnlab.train.evaluate import image_files, predict_files

    loaded = load(model)
    records = predict_files(loaded, image_files(images), top_k=top_k)
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        if loaded.task == "regression":
            writer.writerow(["file", "value"])
            writer.writerows([r["file"], repr(r["value"])] for r in records)
        else:
            writer.writerow(["file", "rank", "class", "probability"])
            for r in records:
                for rank, item in enumerate(r["top"], 1):
                    writer.writerow([r["file"], rank, item["class"], f"{item['probability']:.6f}"])
        return
    for r in records:
        if loaded.task == "regression":
            typer.echo(f"{r['file']}: {r['value']:.6g}")
        else:
            typer.echo(f"{r['file']}: " + ", ".join(f"{t['class']} {t['probability']:.4f}" for t in r["top"]))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cnnlab`` script; returns the exit status."""
    try:
        app(args=argv, prog_name="cnnlab")
    except CnnlabError as error:
        typer.echo(f"error: {error}", err=True)
        return 2
    except SystemExit as done:  # click's standalone mode: usage errors exit 2
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
