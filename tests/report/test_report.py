"""The run report: every section, offline (no external URL), images that decode, numbers equal to the run's files."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.report import write_report

from .conftest import CLASSES, Page, copy_run, decode_data_uri

pytestmark = pytest.mark.slow  # each fixture trains a tiny run

RUN_SECTIONS = {"run", "data", "model", "curves", "inside", "config", "skipped", "augmentation", "history", "events"}


def _page(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def _history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_train_wrote_the_report_and_the_session_log(classification_run: Path) -> None:
    assert (classification_run / "report.html").is_file()
    log = json.loads((classification_run / "run.json").read_text())
    (session,) = log["sessions"]
    assert session["resumed"] is False and session["epochs_before"] == 0 and session["epochs_after"] == 2
    assert session["end"] is not None and session["seconds"] > 0 and session["device"] == "cpu"


def test_classification_page_has_every_section(classification_run: Path, tmp_path: Path) -> None:
    path = write_report(classification_run, tmp_path / "page.html")
    page = _page(path)
    assert RUN_SECTIONS | {"evaluation-validation", "evaluation-test", "summary", "class-counts", "final-metrics"} <= page.ids
    text = page.all_text
    for words in ("Learning curves", "Best epoch", "Per class", "Confusion matrix", "Most confused pairs",
                  "Top losses", "First layer's learned filters", "Feature maps of one image", "top-5 accuracy",
                  "seed", "precision", "versions", "started", "duration", "resumed", "horizontal_flip",
                  "Total params", "image_size", "broken.png"):
        assert words in text, words
    # the class counts per split: 6 classes x 10 images, a quarter of each to validation
    counts = {row[0]: row[1:] for row in page.tables["class-counts"][1:]}
    assert page.tables["class-counts"][0] == ["class", "train", "validation", "test"]
    assert counts["circle"] == ["8", "2", "4"] and counts["total"] == ["48", "12", "24"]  # round(2.5) = 2 per class
    assert "Evaluation on the test split (24 images)" in text
    assert set(CLASSES) <= set(counts)
    # the augmentation grid, the confusion matrices, the gallery: images, each a PNG that decodes
    images = [value for tag, key, value in page.urls if tag == "img"]
    assert len(images) >= 10
    for uri in images:
        assert decode_data_uri(uri).size[0] > 0
    # the layer table comes from cnnlab.spec.summary, totals as model.json's spec builds them
    from cnnlab.inference import load
    from cnnlab.spec import summary

    s = summary(load(classification_run).module)
    rows = page.tables["summary"][1:]
    assert len(rows) == len(s.layers)
    assert f"{s.total_params:,}" in text


def test_the_page_links_nothing_outside(classification_run: Path) -> None:
    html = (classification_run / "report.html").read_text(encoding="utf-8")
    page = Page(html)
    for tag, key, value in page.urls:
        assert not re.match(r"\s*(https?:)?//", value), (tag, key, value[:80])
        assert value.startswith(("data:image/png;base64,", "#")), (tag, key, value[:80])
    for style in page.styles:
        for url in re.findall(r"url\(([^)]*)\)", style):
            assert "http://" not in url and "https://" not in url
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags


def test_user_data_is_escaped(classification_run: Path) -> None:
    html = (classification_run / "report.html").read_text(encoding="utf-8")
    assert "a&amp;b &lt;i&gt;" in html
    assert "<i>" not in html
    assert "a&b <i>" in Page(html).all_text


def test_numbers_equal_history_csv_and_model_json(classification_run: Path) -> None:
    page = _page(classification_run / "report.html")
    history = _history(classification_run)
    table = page.tables["history"]
    header, rows = table[0], table[1:]
    assert header[0] == "epoch" and header[1:] == [k for k in history[0] if k != "epoch"]
    assert len(rows) == len(history) == 2
    for row, want in zip(rows, history):
        assert int(row[0]) == int(want["epoch"]) + 1
        for key, cell in zip(header[1:], row[1:]):
            assert float(cell) == float(want[key]), key
    meta = json.loads((classification_run / "model.json").read_text())
    final = page.tables["final-metrics"]
    assert final[0] == list(meta["metrics"])
    assert [float(v) for v in final[1]] == list(meta["metrics"].values())


def test_evaluation_equals_evaluate_model_on_the_saved_split(classification_run: Path) -> None:
    from cnnlab.inference import load
    from cnnlab.inference.evaluate import evaluate_model
    from cnnlab.report.build import open_splits
    from cnnlab.report.run import read_run

    model = load(classification_run)
    sets, _ = open_splits(read_run(classification_run), model.meta)
    assert len(sets["validation"]) == 12 and len(sets["train"]) == 48 and len(sets["test"]) == 24
    want = evaluate_model(model, sets["validation"])
    html = (classification_run / "report.html").read_text(encoding="utf-8")
    section = html[html.index('id="evaluation-validation"'):html.index('id="evaluation-test"')]
    accuracy = re.search(r'data-metric="accuracy"><div class="v"><span data-value="([^"]+)"', section).group(1)
    assert float(accuracy) == want["accuracy"]
    top5 = re.search(r'data-metric="top-5 error"><div class="v"><span data-value="([^"]+)"', section).group(1)
    assert float(top5) == want["top5_error"]
    # the per-class table: precision / recall / F1 / support of every class, in the model's order
    table = section[section.index('class="per-class"'):section.index("</table>")]
    cells = re.findall(r'<tr><td>(.*?)</td>((?:<td class="n"><span data-value="[^"]+">[^<]*</span></td>){4})</tr>', table)
    assert len(cells) == len(want["classes"])
    for (name, rest), cls in zip(cells, want["classes"]):
        values = [float(v) for v in re.findall(r'data-value="([^"]+)"', rest)]
        scores = want["per_class"][cls]
        assert values == [scores["precision"], scores["recall"], scores["f1"], scores["support"]]
    # the confusion matrix (counts): an HTML table, rows true, columns predicted
    counts = section[section.index('<table class="confusion">'):]
    counts = counts[:counts.index("</table>")]
    rows = [[int(v) for v in re.findall(r'<td class="n[^"]*" style="[^"]*">(\d+)</td>', row)]
            for row in counts.split("<tr>")[2:]]
    assert rows == want["confusion_matrix"]
    # one gallery card per top loss (all 12 images here: fewer than the gallery's 16)
    assert section.count('class="card"') == 12


def test_regression_page(regression_run: Path) -> None:
    from cnnlab.inference import load
    from cnnlab.inference.evaluate import evaluate_model
    from cnnlab.report.build import open_splits
    from cnnlab.report.run import read_run

    page = _page(regression_run / "report.html")
    assert RUN_SECTIONS | {"evaluation-validation", "summary"} <= page.ids
    text = page.all_text
    for words in ("MAE", "RMSE", "Worst predictions", "regression", "First layer's learned filters"):
        assert words in text, words
    alts = {a for tag, key, a in page.urls}
    html = (regression_run / "report.html").read_text()
    assert 'alt="predicted vs true"' in html and 'alt="residual histogram"' in html
    assert "Confusion matrix" not in text
    model = load(regression_run)
    sets, _ = open_splits(read_run(regression_run), model.meta)
    want = evaluate_model(model, sets["validation"])
    mae = re.search(r'data-metric="MAE"><div class="v"><span data-value="([^"]+)"', html).group(1)
    rmse = re.search(r'data-metric="RMSE"><div class="v"><span data-value="([^"]+)"', html).group(1)
    assert float(mae) == want["mae"] and float(rmse) == want["rmse"]
    for uri in alts:
        if uri.startswith("data:"):
            decode_data_uri(uri)
    history = _history(regression_run)
    rows = page.tables["history"][1:]
    assert [float(r[1]) for r in rows] == [float(h["loss"]) for h in history]


def test_a_crashed_run_says_so_and_shows_what_exists(classification_run: Path, tmp_path: Path) -> None:
    run = copy_run(classification_run, tmp_path)
    for name in ("model.json", "weights.safetensors", "report.html"):
        (run / name).unlink()
    path = write_report(run)
    page = _page(path)
    text = page.all_text
    assert "crashed" in page.ids and "This run did not finish" in text
    assert "best checkpoint" in text and "evaluation-validation" in page.ids  # best/ is what exists
    assert "history" in page.ids
    # states only: no bundle at all, no history yet
    shutil.rmtree(run / "best")
    (run / "history.csv").unlink()
    page = _page(write_report(run))
    text = page.all_text
    assert "This run did not finish" in text and "No epoch finished" in text and "Nothing is evaluated" in text
    assert "cnnlab train --resume" in text and "evaluation-validation" not in page.ids


def test_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    from cnnlab.cli import main

    with pytest.raises(CnnlabError, match="is not a run folder"):
        write_report(tmp_path)
    (tmp_path / "config.yaml").write_text("data: {source: shapes}\n")
    with pytest.raises(CnnlabError, match="is not a run folder"):
        write_report(tmp_path)  # a config alone is not a run
    assert main(["report", str(tmp_path)]) == 2
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert not (tmp_path / "report.html").exists()


def test_cli_report_writes_where_asked(classification_run: Path, tmp_path: Path, capsys) -> None:
    from cnnlab.cli import main

    out = tmp_path / "x" / "r.html"
    assert main(["report", str(classification_run), "-o", str(out)]) == 0
    assert out.is_file() and f"report: {out}" in capsys.readouterr().out


def test_a_resumed_run_says_so(classification_run: Path, tmp_path: Path) -> None:
    from cnnlab.train.api import fit

    run = copy_run(classification_run, tmp_path)
    for name in ("model.json", "weights.safetensors", "report.html"):  # killed before the final bundle
        (run / name).unlink()
    fit(resume=run, verbose=0, report=True)  # the saved config names the data root
    assert (run / "report.html").is_file()  # written again after the resumed run finished
    page = _page(run / "report.html")
    text = page.all_text
    assert "yes (2 sessions)" in text and "2 trained of 2 asked" in text and "crashed" not in page.ids
    log = json.loads((run / "run.json").read_text())
    assert [s["resumed"] for s in log["sessions"]] == [False, True]
    assert log["sessions"][1]["epochs_before"] == 2 and log["sessions"][1]["epochs_after"] == 2


def test_a_failing_report_does_not_lose_the_run(tmp_path: Path, monkeypatch, report_data: Path) -> None:
    import cnnlab.report
    from cnnlab.train.api import fit

    from .conftest import make_folder

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cnnlab.report, "write_report", broken)
    said: list[str] = []
    from cnnlab.train.api import run_experiment

    data = make_folder(tmp_path / "images", per_class=3)
    history = run_experiment(None, {"data.source": str(data), "out": str(tmp_path / "run"), "epochs": 1,
                                    "data.root": str(report_data)}, verbose=2, say=said.append, report=True)
    assert history.epochs == 1 and (tmp_path / "run" / "model.json").is_file()
    assert not (tmp_path / "run" / "report.html").exists()
    line = [s for s in said if s.startswith("report:")]
    assert line == [f"report: not written (RuntimeError: disk full); write it with `cnnlab report {tmp_path / 'run'}`"]
    del fit


def test_data_that_moved_is_said_and_the_rest_shown(classification_run: Path, tmp_path: Path) -> None:
    import yaml

    run = copy_run(classification_run, tmp_path)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["source"] = str(tmp_path / "gone")
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    page = _page(write_report(run))
    text = page.all_text
    assert "the data could not be opened, so nothing is evaluated" in text and str(tmp_path / "gone") in text
    assert {"model", "curves", "history", "summary"} <= page.ids and "evaluation-validation" not in page.ids


def test_top_losses_get_the_explain_apis_grad_cam(classification_run: Path, tmp_path: Path, monkeypatch) -> None:
    """The gallery calls cnnlab.explain.explain(model, x, method="gradcam", target=[predicted class per image])
    and overlays its maps with cnnlab.explain.overlay (stand-ins here, recording what they were given)."""
    from types import SimpleNamespace

    import numpy as np

    import cnnlab.explain

    calls: list[dict] = []

    def explain(model, images, method="gradcam", target=None, layer=None):
        calls.append({"n": len(images), "method": method, "target": list(target), "shape": tuple(images.shape)})
        maps = np.tile(np.linspace(0, 1, images.shape[-1], dtype=np.float32), (len(images), images.shape[-2], 1))
        return SimpleNamespace(maps=maps, targets=list(target))

    def overlay(image, heat, alpha=0.5, colormap="jet"):
        return np.zeros((*heat.shape, 3), dtype=np.uint8) + 7

    monkeypatch.setattr(cnnlab.explain, "explain", explain, raising=False)
    monkeypatch.setattr(cnnlab.explain, "overlay", overlay, raising=False)
    path = write_report(classification_run, tmp_path / "cam.html")
    html = path.read_text(encoding="utf-8")
    assert [c["method"] for c in calls] == ["gradcam", "gradcam"]  # validation and test galleries
    assert [c["n"] for c in calls] == [12, 16] and calls[0]["shape"][1:] == (3, 16, 16)
    assert html.count('alt="Grad-CAM overlay"') == 12 + 16
    # each target is the predicted class that card names
    section = html[html.index('id="evaluation-validation"'):html.index('id="evaluation-test"')]
    from cnnlab.inference import load

    classes = load(classification_run).classes
    shown = [classes.index(name.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
             for name in re.findall(r"<div>predicted: (.*?)</div>", section)]
    assert shown == calls[0]["target"]
    overlays = re.findall(r'<img class="px" src="(data:image/png;base64,[^"]+)" alt="Grad-CAM overlay">', section)
    assert decode_data_uri(overlays[0]).getpixel((0, 0)) == (7, 7, 7)
