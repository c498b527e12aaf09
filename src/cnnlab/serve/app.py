"""The HTTP API and the web page: ``create_app(model)`` returns a FastAPI app.

Endpoints::

    GET  /             the web page (plain HTML + inline JavaScript, no CDN)
    POST /v1/predict   multipart field ``file`` (repeat it for several images), ?top_k=5
                       -> {"predictions": [{"file": ..., "top_k": [{"class": ..., "probability": ...}]}]}
                          (regression: {"file": ..., "value": ...})
    POST /v1/explain   one ``file`` (?target=CLASS) -> the Grad-CAM overlay as a PNG
    GET  /v1/model     the model card: classes, input size, metrics, engine
    GET  /healthz      {"status": "ok"}
    GET  /docs         OpenAPI (Swagger UI)

Every client mistake is a 4xx with JSON ``{"error": ..., "fix": ...}``; nothing a
client sends is written to disk (the body is read into memory up to the upload
limit and parsed there). With a token, ``/v1/*`` wants ``Authorization: Bearer TOKEN``.
"""


import asyncio
import hmac
import importlib.resources
from typing import Any

import numpy as np

from cnnlab.serve.engine import Batcher, Predictor, describe, json_safe, open_model
from cnnlab.serve.upload import (FIELD, ApiError, decode_upload, display_size, image_parts, parse_multipart,
                                 probe_upload)

INLINE_DECODE_BYTES = 64 * 1024  # below this (and INLINE_DECODE_PIXELS), decoding on the event loop
INLINE_DECODE_PIXELS = 250_000  # costs less than a hop to the thread pool
MULTIPART_DOC = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": [FIELD],
            "properties": {FIELD: {"type": "array", "items": {"type": "string", "format": "binary"},
                                   "description": "one or more images (PNG, JPEG, GIF, BMP, TIFF, WebP)"}}}}},
    }
}
ERROR_DOC = {"description": "a client mistake", "content": {"application/json": {"example": {
    "error": "what was wrong", "fix": "what to do"}}}}


def page_html() -> str:
    """The web page (``page.html`` shipped in the package: plain HTML and inline JavaScript, no CDN)."""
    return importlib.resources.files("cnnlab.serve").joinpath("page.html").read_text(encoding="utf-8")


def create_app(model: str | Any, *, max_batch: int = 32, max_upload_mb: float = 10.0, token: str | None = None,
               batching: bool = True, max_wait_ms: float = 2.0, engine: str = "auto", max_pixels: int | None = None) -> Any:
    """The FastAPI app serving ``model`` (a run folder, bundle, ``.onnx`` file or a :class:`Predictor`).

    ``max_batch``: images per forward pass when batching; ``batching=False`` runs
    each request on its own (the benchmark's baseline). ``max_upload_mb``: the
    largest request body. ``token``: required as ``Authorization: Bearer TOKEN`` on /v1/*.
    """
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from cnnlab import __version__
    from cnnlab.serve.upload import MAX_PIXELS

    predictor: Predictor = model if isinstance(model, Predictor) else open_model(model, engine)
    limit = int(max_upload_mb * 1024 * 1024)
    pixel_limit = int(max_pixels or MAX_PIXELS)
    batcher = Batcher(predictor.run, max_batch, max_wait_ms) if batching else None
    h, w, c = predictor.input_shape

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if batcher is not None:
            batcher.close()

    app = FastAPI(title=f"cnnlab: {predictor.name}", version=__version__, lifespan=lifespan,
                  description="Predictions and Grad-CAM heat maps of a cnnlab model. Errors are "
                              "`{\"error\": ..., \"fix\": ...}` with a 4xx status.")
    app.state.predictor, app.state.batcher = predictor, batcher

    def error_response(status: int, error: str, fix: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": error, "fix": fix}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.error, exc.fix, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        fixes = {404: "see /docs for the endpoints", 405: "see /docs for each endpoint's method"}
        return error_response(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                              fixes.get(exc.status_code, "see /docs"))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, f"{where}: {first.get('msg', 'invalid request')}", "see /docs for the parameters")

    def check_token(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        if not header:
            raise ApiError(401, "this server wants a token and none was sent",
                           "send the header 'Authorization: Bearer TOKEN' (the token given to `cnnlab serve --token`)")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "the token is wrong", "send the token given to `cnnlab serve --token` "
                                                      "as 'Authorization: Bearer TOKEN'")

    async def read_body(request: Request) -> bytes:
        """The body, read into memory and refused (413) as soon as it passes the limit."""
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise ApiError(400, f"Content-Length {declared!r} is not a number", "let your HTTP client set it") from None
            if size > limit:
                raise ApiError(413, f"the upload is {size / 1e6:.1f} MB, over the limit of {max_upload_mb:g} MB",
                               f"send smaller images, fewer per request, or start the server with a larger --max-upload-mb")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise ApiError(413, f"the upload is over the limit of {max_upload_mb:g} MB",
                               "send smaller images, fewer per request, or start the server with a larger --max-upload-mb")
            chunks.append(chunk)
        body = b"".join(chunks)
        if not body:
            raise ApiError(400, "the request body is empty",
                           f"send the images as a multipart form with the field '{FIELD}' (curl -F {FIELD}=@picture.png URL)")
        return body

    async def uploads(request: Request) -> list[Any]:
        body = await read_body(request)
        return image_parts(parse_multipart(body, request.headers.get("content-type", "")))

    def label_of(part: Any, i: int) -> str:
        return part.filename or f"{FIELD}[{i}]"

    def decode_all(parts: list[Any]) -> np.ndarray:
        batch = np.empty((len(parts), h, w, c), dtype=np.uint8)
        for i, part in enumerate(parts):
            batch[i] = decode_upload(part.data, label_of(part, i), (h, w), c, pixel_limit)
        return batch

    def cheap(parts: list[Any]) -> bool:
        """Small files of few pixels: decoded on the event loop (a flat 4000x4000 PNG is small but slow)."""
        if sum(len(p.data) for p in parts) > INLINE_DECODE_BYTES:
            return False
        try:
            return sum(hh * ww for hh, ww in (probe_upload(p.data, label_of(p, i), pixel_limit)
                                              for i, p in enumerate(parts))) <= INLINE_DECODE_PIXELS
        except ApiError:
            return True  # decode_all raises the same error at once

    async def forward(batch: np.ndarray, arrived: bool = False) -> np.ndarray:
        if batcher is not None:
            future = batcher.submit(batch)
            if arrived:  # queued now: no longer "on its way" (after the put, so the worker never misses it)
                batcher.incoming -= 1
            return await asyncio.wrap_future(future)
        return await run_in_threadpool(predictor.run, batch)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html())

    @app.get("/healthz", summary="Liveness: the model is loaded")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "engine": predictor.engine, "token_required": token is not None}

    @app.get("/v1/model", summary="The model card: classes, input size, metrics, engine",
             responses={401: ERROR_DOC})
    async def model_card(request: Request) -> JSONResponse:
        check_token(request)
        card = describe(predictor)
        card.update(cnnlab_version=__version__, max_batch=max_batch if batching else 1, batching=batching,
                    max_upload_mb=max_upload_mb,
                    forward_passes=batcher.batches if batcher else None, images_served=batcher.images if batcher else None)
        return JSONResponse(json_safe(card))

    @app.post("/v1/predict", summary="Top-k classes (or the value) of each uploaded image",
              openapi_extra=MULTIPART_DOC,
              responses={s: ERROR_DOC for s in (400, 401, 413, 415, 422)})
    async def predict(request: Request, top_k: int = Query(5, ge=1, le=1000, description="classes per image")) -> JSONResponse:
        check_token(request)
        if batcher is not None:
            batcher.incoming += 1  # on the event loop only: no lock needed
        try:
            parts = await uploads(request)
            if cheap(parts):
                batch = decode_all(parts)  # a thumbnail decodes faster than a hop to the thread pool
            else:
                batch = await run_in_threadpool(decode_all, parts)
        except BaseException:
            if batcher is not None:
                batcher.incoming -= 1
            raise
        out = await forward(batch, arrived=True)
        predictions = []
        for i, part in enumerate(parts):
            if predictor.task == "regression":
                predictions.append({"file": label_of(part, i), "value": float(np.asarray(out[i]).reshape(-1)[0])})
            else:
                predictions.append({"file": label_of(part, i), "top_k": predictor.top_k(out[i], top_k)})
        return JSONResponse(json_safe({"predictions": predictions}))

    @app.post("/v1/explain", summary="The Grad-CAM heat map of one image, overlaid on it (PNG)",
              openapi_extra=MULTIPART_DOC, response_class=Response,
              responses={200: {"content": {"image/png": {}}}, **{s: ERROR_DOC for s in (400, 401, 409, 413, 415, 422)}})
    async def explain(request: Request, target: str | None = Query(None, description="class name or index (default: the top class)")) -> Response:
        check_token(request)
        parts = await uploads(request)
        if len(parts) != 1:
            raise ApiError(422, f"{len(parts)} images sent; a heat map is made for one", f"send one '{FIELD}' per request")
        if predictor.torch_model is None:
            raise ApiError(409, "this server has no torch model, and heat maps need one (an .onnx file only predicts)",
                           "serve the run folder (cnnlab serve RUN) to get heat maps")
        part = parts[0]
        label = label_of(part, 0)
        x = await run_in_threadpool(decode_upload, part.data, label, (h, w), c, pixel_limit)
        png = await run_in_threadpool(heat_map_png, predictor, part.data, x, resolve_target(predictor, target))
        return Response(png, media_type="image/png")

    return app


def resolve_target(predictor: Predictor, target: str | None) -> int | None:
    """The ``target`` query (a class name or index; empty: the top class) -> a class index, or a 422."""
    if target is None or target == "":
        return None
    classes = predictor.classes or []
    if target in classes:
        return classes.index(target)
    if target.isdigit() and int(target) < max(len(classes), 1):
        return int(target)
    raise ApiError(422, f"target {target!r} is not one of the model's classes",
                   f"give a class name ({', '.join(classes[:10])}{'...' if len(classes) > 10 else ''}) or an index")


def heat_map_png(predictor: Predictor, data: bytes, x: np.ndarray, target: int | None) -> bytes:
    """Grad-CAM of the model-size image ``x`` (H, W, C), overlaid on the upload at display size."""
    try:
        from cnnlab.explain import explain, overlay, to_png_bytes
    except ImportError:  # the explanations package not installed with this build
        raise ApiError(409, "heat maps are not available in this cnnlab build (no cnnlab.explain)",
                       "update cnnlab, or use /v1/predict") from None
    from cnnlab.data.decode import decode_image
    from cnnlab.errors import CnnlabError

    loaded = predictor.torch_model
    try:
        with predictor.lock:
            result = explain(loaded, np.array(x[None]), method="gradcam", target=target)  # writable
    except CnnlabError as error:
        raise ApiError(422, f"no heat map for this model: {error}", "use /v1/predict") from None
    height, width = probe_upload(data, "file")
    shown = decode_image(data, display_size(height, width), 3)
    return to_png_bytes(overlay(shown, result.maps[0]))
