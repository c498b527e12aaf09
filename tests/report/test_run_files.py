"""Reading a run folder without training: best epoch, early stopping and plateau events, frozen layers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cnnlab.errors import CnnlabError
from cnnlab.report.run import read_run


def _run(tmp_path: Path, history: list[dict[str, float]], **config) -> Path:
    base = {"data": {"source": "shapes"}, "epochs": 10, "callbacks": {"model_checkpoint": {"monitor": "val_loss"}}}
    base.update(config)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(base))
    keys = list(history[0])
    lines = [",".join(["epoch", *keys])] + [",".join([str(i), *(repr(row[k]) for k in keys)]) for i, row in enumerate(history)]
    (tmp_path / "history.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "model.json").write_text('{"format": "cnnlab-bundle"}')
    (tmp_path / "weights.safetensors").write_bytes(b"")
    return tmp_path


ROWS = [{"loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.5, "learning_rate": 0.1},
        {"loss": 0.8, "val_loss": 0.7, "val_accuracy": 0.7, "learning_rate": 0.1},
        {"loss": 0.6, "val_loss": 0.75, "val_accuracy": 0.72, "learning_rate": 0.01},
        {"loss": 0.5, "val_loss": 0.8, "val_accuracy": 0.71, "learning_rate": 0.01}]


def test_best_epoch_follows_the_checkpoint_monitor_and_its_mode(tmp_path: Path) -> None:
    run = read_run(_run(tmp_path / "a", ROWS))
    assert run.monitor == ("val_loss", "min") and run.best_epoch == 1
    run = read_run(_run(tmp_path / "b", ROWS, callbacks={"model_checkpoint": {"monitor": "val_accuracy"}}))
    assert run.monitor == ("val_accuracy", "max") and run.best_epoch == 2
    no_val = [{"loss": 0.5}, {"loss": 0.4}, {"loss": 0.45}]
    run = read_run(_run(tmp_path / "c", no_val))
    assert run.monitor == ("loss", "min") and run.best_epoch == 1


def test_plateau_and_early_stopping_events(tmp_path: Path) -> None:
    callbacks = {"model_checkpoint": None, "reduce_lr_on_plateau": {"patience": 1},
                 "early_stopping": {"monitor": "val_loss", "patience": 2}}
    events = read_run(_run(tmp_path / "a", ROWS, callbacks=callbacks)).events()
    assert [(e["epoch"], e["kind"]) for e in events] == [(2, "plateau"), (3, "early_stopping")]
    assert "0.1 -> 0.01" in events[0]["text"] and "stopped after epoch 4 of 10" in events[1]["text"]
    # a schedule moves the rate by design: no plateau event; all epochs done: no early stop
    events = read_run(_run(tmp_path / "b", ROWS, epochs=4, schedule={"name": "cosine"})).events()
    assert events == []


def test_times_come_from_run_json_or_the_file_times(tmp_path: Path) -> None:
    folder = _run(tmp_path / "a", ROWS)
    times = read_run(folder).times()
    assert times["recorded"] is False and times["resumed"] is None and times["start"] is not None
    (folder / "run.json").write_text('{"sessions": [{"start": "S1", "end": "E1", "seconds": 10, "resumed": false,'
                                     ' "device": "cpu", "precision": "fp32"}, {"start": "S2", "end": null,'
                                     ' "seconds": null, "resumed": true, "device": "cuda:0", "precision": "bf16"}]}')
    times = read_run(folder).times()
    assert times == {"start": "S1", "end": None, "seconds": 10, "resumed": True, "sessions": 2, "device": "cuda:0",
                     "precision": "bf16", "recorded": True}


def test_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "history.csv").write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(CnnlabError, match="is not a run folder"):
        read_run(tmp_path)  # no config.yaml
    (tmp_path / "config.yaml").write_text("- a list\n")
    with pytest.raises(CnnlabError, match="not a cnnlab experiment"):
        read_run(tmp_path)
    (tmp_path / "config.yaml").write_text("data: [unclosed\n")
    with pytest.raises(CnnlabError, match="not valid YAML"):
        read_run(tmp_path)


def test_frozen_layers_are_marked_in_the_summary_rows(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from cnnlab.report.build import model_section
    from cnnlab.spec import build

    spec = {"name": "frozen_net", "input_shape": [8, 8, 1], "layers": [
        {"type": "Conv2D", "filters": 4, "kernel_size": 3, "trainable": False},
        {"type": "Flatten"}, {"type": "Dense", "units": 2, "activation": "softmax"}]}
    model = SimpleNamespace(module=build(spec))
    meta = {"architecture": {"kind": "spec", "spec": spec}, "input_shape": [8, 8, 1]}
    run = read_run(_run(tmp_path, ROWS))
    section = model_section(run, meta, model)
    assert section["name"] == "frozen_net" and section["frozen"] == 1
    assert [r["trainable"] for r in section["rows"]] == [False, True, True]
    assert section["non_trainable"] == 4 * 9 + 4 and section["total"] == 40 + 6 * 6 * 4 * 2 + 2
