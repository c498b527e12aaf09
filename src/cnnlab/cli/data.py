"""Data sets: data inspect, data download (cnnlab.data)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cnnlab.cli.app import app
from cnnlab.cli.common import augment_options

data_app = typer.Typer(help="Data sets: inspect a folder, CSV or built-in set; download built-in sets.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("inspect")
def data_inspect_command(
    source: Annotated[str, typer.Argument(help="Built-in set (shapes, mnist, ...), image folder, .tar.gz or CSV.")],
    split: Annotated[str, typer.Option(help="train, test or val.")] = "train",
    data: Annotated[Optional[str], typer.Option("--data", help="Data root (default $CNNLAB_DATA or ~/.cache/cnnlab).")] = None,
    out: Annotated[Optional[str], typer.Option(help="Write samples.png (and augmented.png with --augment) into this folder; without it nothing is written.")] = None,
    per_class: Annotated[int, typer.Option("--per-class", min=1, max=32, help="Samples per class in the grid.")] = 8,
    augment: Annotated[Optional[list[str]], typer.Option(help="KEY=VALUE (Keras names) or a YAML file; repeatable: also writes augmented.png.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the samples shown.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    val_split: Annotated[Optional[float], typer.Option("--val-split", help="Also count the training / validation subsets this fraction gives (Keras's lines).")] = None,
) -> None:
    """Classes, counts (imbalance flagged), image sizes and modes, skipped files, and PNG grids of samples."""
    import json

    from cnnlab.data.inspect import inspect_dataset

    from cnnlab.errors import CnnlabError

    if out is not None and not out.strip():  # Path("") is the current folder: never write there unasked
        raise CnnlabError("is empty", where="--out", fix="give a folder for samples.png, e.g. --out inspect-photos")
    options = augment_options(augment)
    if options is not None:
        from cnnlab.data.augment import Augment

        Augment.from_config(options)  # bad options fail before the data set is read
    report = inspect_dataset(source, split=split, root=data, out=out, per_class=per_class, augment=options, seed=seed,
                             progress=not as_json, val_split=val_split)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_inspect(report)


def _print_inspect(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)  # long paths stay on one line (greppable, testable)
    for subset in report.get("subsets", []):  # Keras's flow_from_directory lines, training then validation
        console.print(f"Found {subset['images']} images belonging to {subset['classes']} classes.")
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
    written = [report[key] for key in ("samples_png", "augmented_png") if key in report]
    for path in written:
        console.print(f"wrote {path}", markup=False)
    if not written:
        console.print("no files written: add --out DIR for a grid of samples per class (and of augmented "
                      "images with --augment)", markup=False)


@data_app.command("export")
def data_export_command(
    name: Annotated[str, typer.Argument(help="Built-in set: mnist, fashion-mnist, cifar10 or cifar100.")],
    out: Annotated[str, typer.Argument(help="Folder to write OUT/train/<class>/*.png and OUT/test/<class>/*.png into.")],
    data: Annotated[Optional[str], typer.Option("--data", help="Data root (default $CNNLAB_DATA or ~/.cache/cnnlab).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many images per split (the first ones).")] = None,
) -> None:
    """Write a built-in set as a class-per-folder tree of PNG files (the layout flow_from_directory reads)."""
    from cnnlab.data.export import export_dataset

    for split, counts in export_dataset(name.lower(), out, root=data, limit=limit).items():
        typer.echo(f"wrote {sum(counts.values())} images in {len(counts)} classes to {out}/{split}")


@data_app.command("download")
def data_download_command(
    name: Annotated[str, typer.Argument(help="mnist, fashion-mnist, cifar10 or cifar100.")],
    data: Annotated[Optional[str], typer.Option("--data", help="Data root (default $CNNLAB_DATA or ~/.cache/cnnlab).")] = None,
) -> None:
    """Download a built-in set's official files (sha256-checked) into the data root."""
    from cnnlab.data.remote import download
    from cnnlab.data.roots import data_root

    for path in download(name.lower(), data_root(data, create=True) / name.lower()):
        typer.echo(f"ok {path}")


