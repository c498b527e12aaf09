"""The commands: export, predict on an .onnx file, serve as a real process, and the page in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("fastapi")

from serve_helpers import CLASSES, SPEC, make_bundle  # noqa: E402

from cnnlab.cli import main  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


def drawing(path: Path, seed: int) -> Path:
    """A 64x64 picture: a filled shape on a plain background (what a person would try)."""
    rng = np.random.default_rng(seed)
    image = np.full((64, 64, 3), rng.integers(180, 255, 3), dtype=np.uint8)
    y0, x0 = rng.integers(8, 24, 2)
    image[y0:y0 + 28, x0:x0 + 28] = rng.integers(0, 120, 3)
    Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("cli") / "run", SPEC, classes=CLASSES,
                       metrics={"val_accuracy": 0.9, "val_loss": 0.3})


def test_export_then_predict_same_top1(bundle, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(bundle), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"wrote {out}" in said and "max |difference|" in said
    images = [str(drawing(tmp_path / f"{i}.png", i)) for i in range(5)]
    assert main(["predict", str(bundle), *images, "--json", "--top-k", "3"]) == 0
    eager = json.loads(capsys.readouterr().out)
    assert main(["predict", str(out), *images, "--json", "--top-k", "3"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert [r["class"] for r in exported] == [r["class"] for r in eager]
    for a, b in zip(exported, eager):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-4)


def test_export_default_path(bundle, capsys):
    assert main(["export", str(bundle), "--opset", "18"]) == 0
    assert (bundle / "model.onnx").is_file()


def test_export_not_exportable_exit_2(tmp_path, svd_zoo_model, capsys):
    bundle = make_bundle(tmp_path / "b", svd_zoo_model)
    assert main(["export", str(bundle), "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "aten." in err and "svd" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_export_bad_run(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_serve_busy_port_exit_2(bundle, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(bundle), "--port", str(port)]) == 2
    assert "--port" in capsys.readouterr().err


# -------------------------------------------------------------------------------- the real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(bundle):
    """`cnnlab serve` as a real process on a free loopback port; yields its base URL."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen([sys.executable, "-m", "cnnlab", "serve", str(bundle), "--port", str(port),
                                "--max-batch", "8"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):  # bounded: the model loads (and is exported) first
            if process.poll() is not None:
                pytest.fail(f"cnnlab serve exited {process.returncode}: {process.stdout.read()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                try:
                    process.wait(timeout=0.1)  # lets the server start; returns early only if it died
                except subprocess.TimeoutExpired:
                    pass
        else:
            pytest.fail("cnnlab serve did not answer /healthz")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = process.stdout.read()
    assert f"at http://127.0.0.1:{port}/" in output


@pytest.mark.slow
def test_real_server_over_http(server, tmp_path):
    import httpx

    with httpx.Client(base_url=server, timeout=30) as client:
        card = client.get("/v1/model").json()
        assert card["classes"] == CLASSES and card["engine"] == "onnxruntime"
        files = [("file", (f"{i}.png", drawing(tmp_path / f"{i}.png", i).read_bytes(), "image/png")) for i in range(3)]
        r = client.post("/v1/predict", files=files)
        assert r.status_code == 200
        assert len(r.json()["predictions"]) == 3
        bad = client.post("/v1/predict", files={"file": ("x.txt", b"not an image", "text/plain")})
        assert bad.status_code == 415 and set(bad.json()) == {"error", "fix"}
        assert client.get("/healthz").json()["status"] == "ok"  # still up after the bad request


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_page_in_a_browser(server, tmp_path, bundle):
    playwright = pytest.importorskip("playwright.sync_api")

    from cnnlab.inference import load

    picture = drawing(tmp_path / "shape.png", 3)
    expected = load(bundle).predict_classes([str(picture)])[0]
    explain_ready = _explain_available()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(server + "/")
            page.wait_for_selector("#model-card table", timeout=30_000)
            assert "circle" in page.inner_text("#model-card")
            page.set_input_files("#file", str(picture))
            page.wait_for_selector(".top1", timeout=30_000)
            assert page.inner_text(".top1") == expected
            assert page.locator(".bar").count() == 3
            if explain_ready:
                overlay = page.wait_for_selector("img.overlay", timeout=30_000)
                page.wait_for_function("document.querySelector('img.overlay').naturalWidth > 0", timeout=30_000)
                assert overlay.evaluate("img => img.naturalWidth") == 384
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("CNNLAB_SCREENSHOT"):
                shutil.copy(shot, os.environ["CNNLAB_SCREENSHOT"])
            assert Image.open(shot).size[0] == 1000
        finally:
            browser.close()


def _explain_available() -> bool:
    try:
        from cnnlab.explain import explain  # noqa: F401
    except ImportError:
        return False
    return True


def test_export_opset_the_exporter_cannot_write_exit_2(bundle, tmp_path, capsys):
    # torch's exporter silently writes opset 18 when it cannot convert down to 7: refused, nothing written.
    out = tmp_path / "m.onnx"
    assert main(["export", str(bundle), "-o", str(out), "--opset", "7"]) == 2
    err = capsys.readouterr().err
    assert "--opset" in err and "opset 7" in err and "wrote opset 18" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_export_out_a_folder_is_refused_before_tracing(bundle, tmp_path, monkeypatch, capsys):
    import cnnlab.serve.export as export

    monkeypatch.setattr(export, "to_onnx_bytes", lambda *a, **k: pytest.fail("traced before --out was checked"))
    assert main(["export", str(bundle), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"e.g. {tmp_path / 'model.onnx'}" in err
