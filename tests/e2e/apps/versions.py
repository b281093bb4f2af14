"""One small JSON API in two versions, for the diff's end-to-end test (tests/e2e/test_diff.py).

    APP_VERSION=v1 APP_CAPTURE=1 uvicorn tests.e2e.apps.versions:app   # production, captured
    APP_VERSION=v2 uvicorn tests.e2e.apps.versions:app                 # the candidate

Starlette (FastAPI's core). Both versions make noise on every answer: a random request id (body and
``X-Request-Id``), a timestamp, an unordered array shuffled, a float that wobbles within
0.01, and uvicorn's ``Date``/``Server`` headers. v2 plants the regressions:

- ``GET /api/users/{id}``: ``$.count`` turns from a number into a string; ``$.nickname`` is gone
- ``GET /api/orders/{id}``: ``$.steps`` (order matters) reversed; ``$.total`` 1.50 higher
- ``GET /api/stock/{sku}``: 404 instead of 200
- ``GET /api/search``: three times slower (every route takes 50 ms, this one 150 ms on v2:
  long enough that a busy machine's scheduling delays do not hide it)
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shadowtap.types import ASGIApp

VERSION = os.environ.get("APP_VERSION", "v1")
BASE_S = 0.05


def _noise() -> dict[str, Any]:
    tags = ["red", "green", "blue", "black"]
    random.shuffle(tags)
    return {
        "request_id": str(uuid.uuid4()),
        "generated_at": datetime.now(UTC).isoformat(),
        "tags": tags,
        "tax": round(1.0 + random.random() / 500, 6),
    }


def _route(path: str, query: str) -> tuple[int, Any, float]:
    v2 = VERSION == "v2"
    parts = path.strip("/").split("/")
    if parts[:2] == ["api", "users"] and len(parts) == 3:
        doc: dict[str, Any] = {"id": int(parts[2]), "name": f"User {parts[2]}", "count": 3}
        if v2:
            doc["count"] = "3"
        else:
            doc["nickname"] = f"u{parts[2]}"
        return 200, {**doc, **_noise()}, BASE_S
    if parts[:2] == ["api", "orders"] and len(parts) == 3:
        steps = ["pick", "pack", "ship"]
        total = 10.0 + int(parts[2]) + random.random() / 500
        doc = {"id": int(parts[2]), "steps": steps[::-1] if v2 else steps, "total": total}
        if v2:
            doc["total"] = round(total + 1.5, 6)
        return 200, {**doc, **_noise()}, BASE_S
    if parts[:2] == ["api", "stock"] and len(parts) == 3:
        if v2:
            return 404, {"error": "unknown sku", **_noise()}, BASE_S
        return 200, {"sku": parts[2], "available": 7, **_noise()}, BASE_S
    if path == "/api/search":
        return 200, {"query": query, "hits": 3, **_noise()}, BASE_S * 3 if v2 else BASE_S
    if path == "/ready":
        return 200, {"ok": True}, 0.0
    return 404, {"error": "not found"}, 0.0


async def _endpoint(request: Request) -> Response:
    status, doc, delay = _route(request.url.path, request.url.query)
    await asyncio.sleep(delay)
    headers = {"x-request-id": str(uuid.uuid4())}
    return Response(orjson.dumps(doc), status, headers, media_type="application/json")


def _build() -> ASGIApp:
    app: ASGIApp = Starlette(routes=[Route("/{path:path}", _endpoint)])
    if os.environ.get("APP_CAPTURE") == "1":
        from shadowtap.producers.asgi import ShadowtapMiddleware

        return ShadowtapMiddleware(app)
    return app


app = _build()
