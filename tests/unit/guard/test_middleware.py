"""The ASGI and WSGI guards: unmarked requests pass untouched, verified ones run mirrored,
and claims that fail verification are rejected (or run as ordinary traffic)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shadowtap.guard import GuardMiddleware, GuardWSGIMiddleware, is_mirrored, mirrored_request_id
from shadowtap.marking import Marker
from shadowtap.types import Message, Receive, Scope, Send

from .conftest import KEY, make_guard, marker

RID = "0190a0b1-7c2d-7e3f-8a4b-5c6d7e8f9012"
TARGET = "/stg/orders?id=7"


def _now() -> int:
    return time.time_ns() // 1_000_000


def _claims() -> dict[str, tuple[dict[str, str], str]]:
    """Marking headers of each kind of claim, and the verdict each must get."""
    signed = marker.sign("POST", TARGET, RID)
    return {
        "valid": ({"x-shadowtap-signature": signed, "x-shadowtap-id": RID}, "valid"),
        "forged": (
            {
                "x-shadowtap-signature": Marker("guess").sign("POST", TARGET, RID),
                "x-shadowtap-id": RID,
            },
            "bad-signature",
        ),
        "expired": (
            {
                "x-shadowtap-signature": marker.sign("POST", TARGET, RID, now_ms=_now() - 600_000),
                "x-shadowtap-id": RID,
            },
            "expired",
        ),
        "other-path": (
            {
                "x-shadowtap-signature": marker.sign("POST", "/stg/refund", RID),
                "x-shadowtap-id": RID,
            },
            "bad-signature",
        ),
        "wrong-id": ({"x-shadowtap-signature": signed, "x-shadowtap-id": "other"}, "wrong-id"),
        "id-only": ({"x-shadowtap-id": RID}, "missing"),
        "malformed": (
            {"x-shadowtap-signature": "v1; nonsense", "x-shadowtap-id": RID},
            "malformed",
        ),
    }


class App:
    """A raw ASGI and WSGI app that records whether it ran mirrored, and as which request."""

    def __init__(self) -> None:
        self.seen: list[tuple[bool, str | None]] = []

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append((is_mirrored(), mirrored_request_id()))
        task = asyncio.create_task(asyncio.sleep(0, result=is_mirrored()))
        self.seen.append((await task, mirrored_request_id()))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": b"ok"})

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        self.seen.append((is_mirrored(), mirrored_request_id()))
        start_response("200 OK", [("X-App", "1")])

        def body() -> Iterator[bytes]:
            yield b"o"
            self.seen.append((is_mirrored(), mirrored_request_id()))  # while streaming
            yield b"k"

        return body()


def _scope(headers: dict[str, str], path: str = "/stg/orders", query: bytes = b"id=7") -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(b"host", b"stg")] + [(k.encode(), v.encode()) for k, v in headers.items()],
    }


def _call_asgi(middleware: GuardMiddleware, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return sent


def _call_wsgi(
    middleware: GuardWSGIMiddleware, headers: dict[str, str]
) -> tuple[str, list[Any], bytes]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/stg/orders",
        "QUERY_STRING": "id=7",
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
    }
    started: list[Any] = []
    body = b"".join(
        middleware(environ, lambda status, hdrs, exc=None: started.extend([status, hdrs]))
    )
    return started[0], started[1], body


def test_unmarked_requests_reach_the_app_with_the_same_objects() -> None:
    calls: list[tuple[Any, Any, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append((scope, receive, send))

    middleware = GuardMiddleware(app, guard=make_guard())
    scope = _scope({})

    async def receive() -> Message:
        return {}

    async def send(message: Message) -> None:
        pass

    asyncio.run(middleware(scope, receive, send))
    asyncio.run(middleware({"type": "websocket", "headers": []}, receive, send))
    assert calls[0] == (scope, receive, send)
    assert calls[1][0]["type"] == "websocket"
    assert middleware.guard.metrics.render().count("marked_requests_total{") == 0


@pytest.mark.parametrize("claim", list(_claims()))
def test_asgi_runs_only_verified_claims_as_mirrored(claim: str) -> None:
    headers, verdict = _claims()[claim]
    app = App()
    middleware = GuardMiddleware(app.asgi, guard=make_guard())
    sent = _call_asgi(middleware, _scope(headers))
    metrics = middleware.guard.metrics
    if verdict == "valid":
        assert app.seen == [(True, RID), (True, RID)]
        assert (b"x-shadowtap-guard", b"mirrored") in sent[0]["headers"]
        assert metrics.marked("valid", "mirrored") == 1
    else:
        assert app.seen == []
        assert sent[0]["status"] == 403
        assert (b"x-shadowtap-guard", f"rejected; verdict={verdict}".encode()) in sent[0]["headers"]
        assert f"its marking is {verdict}".encode() in sent[1]["body"]
        assert metrics.marked(verdict, "rejected") == 1
    assert not is_mirrored()  # nothing leaks out of the request


@pytest.mark.parametrize("claim", list(_claims()))
def test_wsgi_runs_only_verified_claims_as_mirrored_while_streaming_too(claim: str) -> None:
    headers, verdict = _claims()[claim]
    app = App()
    middleware = GuardWSGIMiddleware(app.wsgi, guard=make_guard())
    status, response_headers, body = _call_wsgi(middleware, headers)
    if verdict == "valid":
        assert (status, body) == ("200 OK", b"ok")
        assert app.seen == [(True, RID), (True, RID)]
        assert ("X-Shadowtap-Guard", "mirrored") in response_headers
    else:
        assert status == "403 Forbidden"
        assert app.seen == []
        assert f"its marking is {verdict}".encode() in body
    assert not is_mirrored()


@pytest.mark.parametrize("claim", ["forged", "expired", "id-only"])
def test_untrusted_claims_can_run_as_ordinary_traffic(claim: str) -> None:
    headers, verdict = _claims()[claim]
    app = App()
    guard = make_guard(on_untrusted="ordinary")
    sent = _call_asgi(GuardMiddleware(app.asgi, guard=guard), _scope(headers))
    assert sent[0]["status"] == 200
    assert app.seen == [(False, None), (False, None)]
    assert guard.metrics.marked(verdict, "ordinary") == 1
    status, _, _ = _call_wsgi(GuardWSGIMiddleware(App().wsgi, guard=guard), headers)
    assert status == "200 OK"


def test_the_signed_target_includes_the_path_prefix_and_query_as_received() -> None:
    headers, _ = _claims()["valid"]
    app = App()
    middleware = GuardMiddleware(app.asgi, guard=make_guard())
    assert _call_asgi(middleware, _scope(headers, path="/orders"))[0]["status"] == 403
    assert _call_asgi(middleware, _scope(headers, query=b"id=8"))[0]["status"] == 403
    assert _call_asgi(middleware, _scope(headers))[0]["status"] == 200


def test_header_names_come_from_the_marking_settings() -> None:
    from shadowtap.config import Settings
    from shadowtap.guard.core import Guard

    settings = Settings.load(
        env={},
        overrides={"marking": {"key": "k2", "header": "X-Sig", "id_header": "X-Rid"}},
    )
    app = App()
    signed = Marker("k2").sign("POST", TARGET, RID)
    middleware = GuardWSGIMiddleware(app.wsgi, guard=Guard(settings))
    status, _, _ = _call_wsgi(middleware, {"x-sig": signed, "x-rid": RID})
    assert status == "200 OK"
    assert app.seen[0] == (True, RID)
    status, _, _ = _call_wsgi(middleware, {"x-shadowtap-signature": signed, "x-shadowtap-id": RID})
    assert status == "200 OK"
    assert app.seen[2] == (False, None)  # the default names mean nothing here


async def test_one_line_installs_it_in_a_fastapi_app() -> None:
    from fastapi import FastAPI

    from shadowtap.config import Settings

    app = FastAPI()

    @app.post("/stg/orders")
    async def orders() -> dict[str, object]:
        return {"mirrored": is_mirrored(), "id": mirrored_request_id()}

    app.add_middleware(
        GuardMiddleware, settings=Settings.load(env={}, overrides={"marking": {"key": KEY}})
    )
    headers, _ = _claims()["valid"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://stg"
    ) as client:
        mirrored = await client.post(TARGET, headers=headers)
        ordinary = await client.post(TARGET)
    assert mirrored.json() == {"mirrored": True, "id": RID}
    assert mirrored.headers["x-shadowtap-guard"] == "mirrored"
    assert ordinary.json() == {"mirrored": False, "id": None}
