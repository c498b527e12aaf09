"""``compare_runs`` (terminal table + page), and the report in a real browser (headless Chromium)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from cnnlab.errors import CnnlabError
from cnnlab.report import compare_runs

from .conftest import Page, copy_run, decode_data_uri

pytestmark = pytest.mark.slow  # the fixtures train tiny runs

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _other_run(run: Path, where: Path) -> Path:
    """A copy of ``run`` whose config says another learning rate and whose last epoch is better."""
    other = copy_run(run, where)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["optimizer"]["lr"] = 0.0123
    (other / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return other


def test_compare_shows_config_differences_and_metrics(classification_run: Path, tmp_path: Path) -> None:
    from rich.console import Console

    other = _other_run(classification_run, tmp_path / "b")
    console = Console(file=io.StringIO(), width=200, record=True)
    path = compare_runs([classification_run, other], tmp_path / "cmp.html", console=console)
    terminal = console.export_text()
    assert "optimizer.lr" in terminal and "0.0123" in terminal and "0.005 " in terminal
    assert "final val_accuracy" in terminal and "best epoch" in terminal
    assert "out" not in [line.split()[0] for line in terminal.splitlines() if line.split()]  # the folder is not a difference
    page = Page(path.read_text(encoding="utf-8"))
    assert {"differences", "metrics", "curves"} <= page.ids
    text = page.all_text
    assert "optimizer.lr" in text and "0.0123" in text
    assert "data.source" not in text  # the same in both: not shown
    images = [v for tag, key, v in page.urls if tag == "img"]
    assert len(images) == 7  # loss, accuracy, top5_accuracy, their val_ twins and learning_rate, overlaid
    for uri in images:
        decode_data_uri(uri)


def test_compare_needs_two_runs_that_are_runs(classification_run: Path, tmp_path: Path) -> None:
    from cnnlab.cli import main

    with pytest.raises(CnnlabError, match="at least two runs"):
        compare_runs([classification_run])
    assert main(["compare", str(classification_run), str(tmp_path)]) == 2
    assert main(["compare", str(classification_run), str(_other_run(classification_run, tmp_path / "c")),
                 "-o", str(tmp_path / "c.html")]) == 0
    assert (tmp_path / "c.html").is_file()


@pytest.mark.skipif(not CHROMIUM.exists() or shutil.which("chromium") is None,
                    reason="Debian's chromium is absent (make test installs it)")
def test_the_report_renders_in_headless_chromium(classification_run: Path, tmp_path: Path) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    page_path = classification_run / "report.html"
    shot = tmp_path / "report.png"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            failed: list[str] = []
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto(page_path.as_uri(), wait_until="load")
            broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length")
            count = page.evaluate("document.images.length")
            height = page.evaluate("document.body.scrollHeight")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == [] and failed == []
    assert count >= 10 and broken == 0
    assert height > 3000  # every section laid out, not one screen of error text
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 20  # not blank
    top = pixels[:900]
    assert (top < 128).mean() > 0.01  # text and tables on the first screen
