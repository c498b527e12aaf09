"""Transfer learning: import-keras, lr-find (cnnlab.train.transfer, cnnlab.train.lr_find)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cnnlab.cli.app import app


@app.command("import-keras")
def import_keras_command(
    model: Annotated[str, typer.Argument(help="A Keras model file: .keras (Keras 3) or legacy .h5.")],
    out: Annotated[str, typer.Option("--out", "-o", help="The bundle folder to write.")],
    classes: Annotated[Optional[str], typer.Option(help="Comma-separated class names (default 0..K-1).")] = None,
    rescale: Annotated[Optional[float], typer.Option(help="Pixel byte -> network input factor (default 1/255).")] = None,
) -> None:
    """Bring a Keras Sequential / functional model over as a bundle (read with h5py; Keras is not needed)."""
    from cnnlab.train.transfer import import_keras_bundle

    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    folder = import_keras_bundle(model, out, classes=names, rescale=rescale)
    typer.echo(f"wrote {folder} (from {model})")


@app.command("lr-find")
def lr_find_command(
    data: Annotated[Optional[str], typer.Argument(help="Built-in set, image folder or CSV.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Zoo name or spec file; default: picked for the data.")] = None,
    pretrained: Annotated[Optional[str], typer.Option(help="Pretrained weights (run folder / bundle, .pth / .safetensors, .keras / .h5).")] = None,
    freeze: Annotated[Optional[str], typer.Option(help="features, none, N leading blocks, or layer names (comma-separated).")] = None,
    backbone_lr_mult: Annotated[Optional[float], typer.Option("--backbone-lr-mult", help="Backbone rate / head rate.")] = None,
    config: Annotated[Optional[str], typer.Option(help="Experiment file (YAML/JSON); flags override it.")] = None,
    data_root: Annotated[Optional[str], typer.Option("--data", help="Data root (default $CNNLAB_DATA or ~/.cache/cnnlab).")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="sgd, adam, adamw or rmsprop.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Images per step.")] = None,
    steps: Annotated[int, typer.Option(help="Steps of the test (at most 100).")] = 100,
    start_lr: Annotated[float, typer.Option("--start-lr", help="First rate.")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr", help="Last rate.")] = 10.0,
    png: Annotated[Optional[str], typer.Option(help="Also write the plot here (.png).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rates and losses as JSON.")] = False,
) -> None:
    """The learning-rate range test: exponentially growing rate, smoothed loss, a plot and a suggested rate."""
    import json

    from cnnlab.cli.train import _freeze_option
    from cnnlab.errors import CnnlabError
    from cnnlab.train.api import lr_find

    if data is None and config is None:
        raise CnnlabError("no data given", where="DATA", fix="e.g. `cnnlab lr-find shapes --model resnet20`")
    options = {"transfer.pretrained": pretrained, "transfer.freeze": _freeze_option(freeze),
               "transfer.backbone_lr_mult": backbone_lr_mult, "optimizer.name": optimizer, "batch_size": batch_size}
    result = lr_find(data, model, config=config, png=png, steps=steps, start_lr=start_lr, end_lr=end_lr,
                     verbose=0, data_root=data_root, **{k: v for k, v in options.items() if v is not None})
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
        return
    typer.echo(f"suggested learning rate: {result.suggestion:.3g} ({len(result.lrs)} steps, "
               f"{result.lrs[0]:.1e} to {result.lrs[-1]:.1e})"
               + (f"; plot in {result.png}" if result.png else "; add --png FILE for the plot"))
