"""The HTTP API through FastAPI's TestClient: every endpoint, and every bad input gets a 4xx with {error, fix}."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")

from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import CLASSES, SPEC, image_bytes, make_bundle, png_bytes  # noqa: E402

from cnnlab.inference import load  # noqa: E402
from cnnlab.serve.app import create_app  # noqa: E402

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("serve") / "run", SPEC, classes=CLASSES,
                       metrics={"val_accuracy": 0.9, "val_loss": 0.3})


@pytest.fixture(scope="module")
def client(bundle):
    with TestClient(create_app(bundle, max_upload_mb=1, max_batch=8)) as c:
        yield c


@pytest.fixture(scope="module")
def token_client(bundle):
    with TestClient(create_app(bundle, token=TOKEN, engine="torch")) as c:
        yield c


def picture(seed: int = 0, size=(20, 24), mode="RGB") -> bytes:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, size=(size[0], size[1], 3), dtype=np.uint8)
    return image_bytes(Image.fromarray(array).convert(mode))


def assert_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "fix"} and body["error"] and body["fix"]
    assert "Traceback" not in response.text
    for word in words:
        assert word.lower() in (body["error"] + " " + body["fix"]).lower()
    return body


# ------------------------------------------------------------------------------------------- endpoints


def test_page(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'type="file"' in r.text and "v1/predict" in r.text and "v1/explain" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN: nothing fetched from elsewhere


def test_healthz_and_docs(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/explain", "/v1/model", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body


def test_model_card(client):
    card = client.get("/v1/model").json()
    assert card["classes"] == CLASSES
    assert card["input_size"] == {"height": 16, "width": 16, "channels": 3}
    assert card["metrics"] == {"val_accuracy": 0.9, "val_loss": 0.3}
    assert card["engine"] == "onnxruntime" and card["explain"] is True


def test_predict_matches_cnnlab(client, bundle):
    files = [("file", (f"p{i}.png", picture(i), "image/png")) for i in range(3)]
    r = client.post("/v1/predict?top_k=2", files=files)
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert [p["file"] for p in predictions] == ["p0.png", "p1.png", "p2.png"]
    expected = load(bundle).predict([picture(i) for i in range(3)])  # same decode path, same model
    for p, row in zip(predictions, expected):
        assert len(p["top_k"]) == 2
        assert p["top_k"][0]["class"] == CLASSES[int(row.argmax())]
        assert p["top_k"][0]["probability"] == pytest.approx(float(row.max()), abs=1e-4)
        assert p["top_k"][0]["probability"] >= p["top_k"][1]["probability"]


def test_predict_torch_engine_agrees(token_client, client):
    files = [("file", ("a.jpg", picture(7), "image/jpeg"))]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    a = token_client.post("/v1/predict", files=files, headers=auth).json()["predictions"][0]["top_k"]
    b = client.post("/v1/predict", files=files).json()["predictions"][0]["top_k"]
    assert token_client.get("/v1/model", headers=auth).json()["engine"] == "torch"
    assert [t["class"] for t in a] == [t["class"] for t in b]
    np.testing.assert_allclose([t["probability"] for t in a], [t["probability"] for t in b], atol=1e-4)


def test_explain_png(client):
    r = client.post("/v1/explain", files={"file": ("a.png", picture(3, size=(30, 40)), "image/png")})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (384, 288) and image.mode == "RGB"  # the upload's aspect, longer side 384
    assert np.asarray(image).std() > 5  # an overlay, not a blank picture
    two = [("file", ("a.png", picture(1), "image/png")), ("file", ("b.png", picture(2), "image/png"))]
    assert_error(client.post("/v1/explain", files=two), 422, "2 images")
    assert_error(client.post("/v1/explain?target=hexagon", files={"file": ("a.png", picture(3), "image/png")}),
                 422, "hexagon")


def test_concurrent_requests_are_batched(bundle):
    from concurrent.futures import ThreadPoolExecutor

    app = create_app(bundle, max_batch=32, max_wait_ms=200)
    with TestClient(app) as c:
        def one(i):
            return c.post("/v1/predict", files={"file": (f"{i}.png", picture(i), "image/png")})

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(one, range(16)))
        assert all(r.status_code == 200 for r in responses)
        batcher = app.state.batcher
        assert batcher.images == 16
        assert batcher.batches < 16  # gathered: fewer forward passes than requests
        assert c.post("/v1/predict", files={"file": ("bad.png", b"junk", "image/png")}).status_code == 415
        assert batcher.incoming == 0  # every request, failed ones too, left the "on its way" count


# ------------------------------------------------------------------------------------------ bad input


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, rows: bytes) -> bytes:
    """A grey 1-bit PNG written by hand (Pillow refuses to write some of the headers tested here)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b"")


def bomb() -> bytes:
    side = 20_000  # 400 million pixels, about 100 kB compressed
    row = b"\x00" * (1 + side // 8)
    return raw_png(side, side, row * side)


def animated() -> bytes:
    frames = [Image.new("RGB", (10, 10), color) for color in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


BAD = {
    "non-image": (b"hello, this is text\n" * 10, 415, "not an image"),
    "truncated": (picture(1)[:120], 400, "truncated"),
    "bomb": (bomb(), 413, "bomb"),
    "zero": (raw_png(0, 0, b""), 422, "0x0"),
    "strip": (png_bytes(np.zeros((50_000, 1), dtype=np.uint8)), 422, "1x50000"),
    "16-bit": (image_bytes(Image.fromarray(np.full((8, 8), 40_000, dtype=np.uint16))), 415, "8-bit"),
    "cmyk": (image_bytes(Image.new("CMYK", (8, 8), (10, 20, 30, 0)), "JPEG"), 415, "cmyk"),
    "animated": (animated(), 415, "animated"),
    "empty file": (b"", 400, "empty"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_image(client, kind):
    data, status, word = BAD[kind]
    assert_error(client.post("/v1/predict", files={"file": ("x.bin", data, "application/octet-stream")}), status, word)
    # the server answers the next request
    assert client.post("/v1/predict", files={"file": ("ok.png", picture(), "image/png")}).status_code == 200


def test_bad_image_among_good_ones_names_it(client):
    files = [("file", ("good.png", picture(), "image/png")), ("file", ("broken.png", picture()[:100], "image/png"))]
    assert_error(client.post("/v1/predict", files=files), 400, "broken.png")


def test_empty_body(client):
    assert_error(client.post("/v1/predict", content=b"", headers={"content-type": "multipart/form-data; boundary=x"}),
                 400, "empty")
    assert_error(client.post("/v1/predict"), 400, "empty")


def test_not_multipart(client):
    assert_error(client.post("/v1/predict", content=picture(), headers={"content-type": "image/png"}), 415, "multipart")
    assert_error(client.post("/v1/predict", json={"file": "a.png"}), 415, "multipart")


def test_malformed_multipart(client):
    body = b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"  # never closed
    r = client.post("/v1/predict", content=body, headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 400 and set(r.json()) == {"error", "fix"} and "cut-off" in r.json()["error"]


def test_wrong_field_name(client):
    body = assert_error(client.post("/v1/predict", files={"image": ("a.png", picture(), "image/png")}), 422, "'file'")
    assert "'image'" in body["error"]


def test_over_the_upload_limit(client):
    big = png_bytes(np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8))  # ~1.5 MB > 1 MB
    assert len(big) > 1024 * 1024
    assert_error(client.post("/v1/predict", files={"file": ("big.png", big, "image/png")}), 413, "limit")


def test_over_the_limit_without_content_length(client):
    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n"
        for _ in range(20):
            yield b"\x00" * 100_000

    assert_error(client.post("/v1/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}),
                 413, "limit")


def test_bad_query(client):
    assert_error(client.post("/v1/predict?top_k=0", files={"file": ("a.png", picture(), "image/png")}), 422, "top_k")


def test_unknown_path_and_method(client):
    assert_error(client.get("/v2/nothing"), 404)
    assert_error(client.get("/v1/predict"), 405)


def test_token(token_client):
    files = {"file": ("a.png", picture(), "image/png")}
    assert_error(token_client.post("/v1/predict", files=files), 401, "token")
    assert_error(token_client.post("/v1/predict", files=files, headers={"Authorization": "Bearer nope"}), 401, "wrong")
    assert_error(token_client.get("/v1/model", headers={"Authorization": "Basic " + TOKEN}), 401, "wrong")
    assert_error(token_client.post("/v1/explain", files=files), 401)
    ok = token_client.post("/v1/predict", files=files, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert token_client.get("/healthz").json()["token_required"] is True
    assert token_client.get("/").status_code == 200  # the page itself is public; its calls carry the token


def test_onnx_file_serves_without_heat_maps(tmp_path, bundle):
    from cnnlab.serve.export import export_onnx

    export_onnx(bundle, tmp_path / "m.onnx")
    with TestClient(create_app(tmp_path / "m.onnx")) as c:
        card = c.get("/v1/model").json()
        assert card["engine"] == "onnxruntime" and card["explain"] is False and card["classes"] == CLASSES
        assert c.post("/v1/predict", files={"file": ("a.png", picture(), "image/png")}).status_code == 200
        assert_error(c.post("/v1/explain", files={"file": ("a.png", picture(), "image/png")}), 409, "run folder")


def test_nothing_written_to_disk(bundle, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # any spooled upload would land here
    big = png_bytes(np.random.default_rng(1).integers(0, 256, (500, 600, 3), dtype=np.uint8))  # > Starlette's 1 MB spool
    before = {p.name for p in bundle.iterdir()}
    with TestClient(create_app(bundle, max_upload_mb=5)) as c:
        assert c.post("/v1/predict", files={"file": ("big.png", big, "image/png")}).status_code == 200
    assert list(tmp_path.iterdir()) == []
    assert {p.name for p in bundle.iterdir()} == before
