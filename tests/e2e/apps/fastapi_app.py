"""FastAPI under uvicorn: ``uvicorn tests.e2e.apps.fastapi_app:app``."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from shadowtap.producers.asgi import ShadowtapMiddleware
from shadowtap.types import Receive, Scope, Send
from tests.e2e.apps import STREAM_CHUNKS

router = APIRouter()


@router.post("/echo")
async def echo(request: Request) -> Response:
    response = Response(
        b"echo:" + await request.body(),
        status_code=201,
        media_type="application/octet-stream",
        headers={"X-Seen-Query": request.scope["query_string"].decode("latin-1")},
    )
    response.set_cookie("prod", "1")
    return response


@router.post("/upload")
async def upload(request: Request) -> JSONResponse:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({"size": size, "sha256": digest.hexdigest()})


@router.post("/deny")
async def deny() -> Response:
    return Response(b"no", status_code=401)  # an auth check: the body is never read


@router.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in STREAM_CHUNKS:
            yield chunk

    return StreamingResponse(chunks(), media_type="text/plain")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


@router.get("/ready")
async def ready() -> Response:
    return Response(b"ok", media_type="text/plain")


inner = FastAPI()
inner.include_router(router)
inner.include_router(router, prefix="/bare")
captured = ShadowtapMiddleware(inner)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/bare/*`` skips the middleware entirely: the baseline for "unchanged"."""
    if scope["type"] == "http" and scope["path"].startswith("/bare/"):
        return await inner(scope, receive, send)
    return await captured(scope, receive, send)
