"""Training and use: train, evaluate, predict (cnnlab.train, cnnlab.inference)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cnnlab.cli.app import app
from cnnlab.errors import CnnlabError

from cnnlab.cli.common import augment_options

# Flag -> dotted field of the experiment file (so an error in a flag names the flag).
_TRAIN_FLAGS = {
    "model": "--model", "epochs": "--epochs", "batch_size": "--batch-size", "optimizer.name": "--optimizer",
    "optimizer.lr": "--lr", "optimizer.momentum": "--momentum", "optimizer.weight_decay": "--weight-decay",
    "schedule.name": "--schedule", "loss.name": "--loss", "loss.label_smoothing": "--label-smoothing",
    "data.val_split": "--val-split", "augment": "--augment", "seed": "--seed", "out": "--out",
    "device": "--device", "checkpoint_every": "--checkpoint-every", "data.source": "DATA", "data.root": "--data",
    "precision": "--precision", "sync_bn": "--sync-bn", "transfer.pretrained": "--pretrained",
    "transfer.freeze": "--freeze", "transfer.freeze_epochs": "--freeze-epochs",
    "transfer.backbone_lr_mult": "--backbone-lr-mult", "transfer.train_bn": "--train-bn",
}


def _lr_option(value: str | None):
    """--lr: a positive number or 'find'."""
    if value is None or value.strip().lower() == "find":
        return None if value is None else "find"
    try:
        return float(value)
    except ValueError:
        raise CnnlabError(f"{value!r} is not a number", where="--lr", fix="give e.g. --lr 0.01, or --lr find") from None


def _freeze_option(value: str | None):
    """--freeze: 'features', 'none', a number of leading blocks, or comma-separated layer names / patterns."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    names = [v.strip() for v in value.split(",") if v.strip()]
    return names[0] if len(names) == 1 else names


@app.command("train")
def train_command(
    ctx: typer.Context,
    data: Annotated[Optional[str], typer.Argument(help="Built-in set (shapes, mnist, ...), image folder or CSV.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Zoo name or spec file; default: picked for the data. A zoo model may bring its own recipe for unset settings (cnnlab models NAME).")] = None,
    data_root: Annotated[Optional[str], typer.Option("--data", help="Data root (default $CNNLAB_DATA or ~/.cache/cnnlab).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs to train.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Images per step.")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="sgd, adam, adamw or rmsprop.")] = None,
    lr: Annotated[Optional[str], typer.Option("--lr", help="Learning rate, or 'find' (the range test's suggestion).")] = None,
    momentum: Annotated[Optional[float], typer.Option(help="SGD / RMSprop momentum.")] = None,
    weight_decay: Annotated[Optional[float], typer.Option("--weight-decay", help="L2 weight decay.")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="constant, step, exponential, cosine, onecycle, plateau, inverse_time.")] = None,
    loss: Annotated[Optional[str], typer.Option(help="Loss name (default: from the task).")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option("--label-smoothing")] = None,
    val_split: Annotated[Optional[float], typer.Option("--val-split", help="Validation fraction (0 = none).")] = None,
    augment: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE, Keras ImageDataGenerator names; repeatable.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed, 0 .. 4294967295.")] = None,
    out: Annotated[Optional[str], typer.Option(help="Run folder (default runs/DATA-MODEL).")] = None,
    resume: Annotated[Optional[str], typer.Option(help="Continue the run in this folder.")] = None,
    config: Annotated[Optional[str], typer.Option(help="Experiment file (YAML/JSON); flags override it.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto (CUDA when there is a GPU), cpu, cuda, cuda:N or mps.")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    precision: Annotated[Optional[str], typer.Option(help="auto (bf16 autocast on CUDA and on CPUs with AVX-512 BF16 / AMX, else fp32), fp32 or bf16.")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every", help="Steps between mid-epoch states.")] = None,
    pretrained: Annotated[Optional[str], typer.Option(help="Pretrained weights: a run folder / bundle, a .pth / .safetensors state dict, a .keras / .h5 file.")] = None,
    freeze: Annotated[Optional[str], typer.Option(help="features, none, N leading blocks, or layer names / glob patterns (comma-separated).")] = None,
    freeze_epochs: Annotated[Optional[int], typer.Option("--freeze-epochs", help="Train the new head alone N epochs, then unfreeze.")] = None,
    backbone_lr_mult: Annotated[Optional[float], typer.Option("--backbone-lr-mult", help="Backbone learning rate as a fraction of the head's.")] = None,
    train_bn: Annotated[bool, typer.Option("--train-bn", help="Let frozen batch norms train (default: inference mode).")] = False,
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
                 "optimizer.name": optimizer, "optimizer.lr": _lr_option(lr), "optimizer.momentum": momentum,
                 "optimizer.weight_decay": weight_decay, "schedule.name": schedule, "loss.name": loss,
                 "loss.label_smoothing": label_smoothing, "data.val_split": val_split,
                 "augment": augment_options(augment), "seed": seed, "out": out, "device": device,
                 "checkpoint_every": checkpoint_every, "compile": True if compile else None,
                 "precision": precision, "sync_bn": True if sync_bn else None,
                 "transfer.pretrained": pretrained, "transfer.freeze": _freeze_option(freeze),
                 "transfer.freeze_epochs": freeze_epochs, "transfer.backbone_lr_mult": backbone_lr_mult,
                 "transfer.train_bn": True if train_bn else None}
    verbose = {0: 1, 1: 2}.get(quiet, 0)
    with distributed.rank_errors():
        history = run_experiment(config, overrides, resume=resume, verbose=verbose, flags=_TRAIN_FLAGS, report=True,
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
    from cnnlab.inference import load
    from cnnlab.inference.evaluate import evaluate_model, save_confusion_png

    from cnnlab.files import check_output

    if png is not None:
        check_output(png, "file", where=f"--png {png}")  # before the evaluation, not after it
    loaded = load(model)
    pre = loaded.require_preprocessing()
    chosen = split or ("test" if "test" in available_splits(data, root=data_root) else "train")
    # The model's class list labels the data: a test folder that lacks a class keeps every index right.
    imageset = open_dataset(data, split=chosen, root=data_root, image_size=tuple(pre["image_size"]), channels=int(pre["channels"]),
                            task="regression" if loaded.task == "regression" else "classification",
                            classes=loaded.classes if loaded.task != "regression" else None)
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
    model: Annotated[str, typer.Argument(help="Run folder, bundle or exported .onnx file.")],
    images: Annotated[list[str], typer.Argument(help="Image files or folders.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Show the k most likely classes.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """The class and its probability (top-k) for each image, or the number for regression."""
    import csv
    import json

    from cnnlab.inference import load
    from cnnlab.inference.evaluate import image_files, predict_files

    if model.lower().endswith(".onnx"):  # an exported file runs on ONNX Runtime
        from cnnlab.serve.onnx_model import load_onnx

        loaded = load_onnx(model)
    else:
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


