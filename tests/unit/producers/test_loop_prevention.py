"""Capture never records a request whose signed marking verifies (mirrored traffic), and
counts it; a forged, expired or half marking is recorded like any request.

A staging app that is itself captured would otherwise feed its mirrored requests back into
the pipeline. Each adapter is driven the way its server drives it; the signature is made as
the replayer makes it, over the path and query as sent.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable, Iterable

import pytest

from shadowtap.marking import Marker
from shadowtap.producers.asgi import ShadowtapMiddleware
from shadowtap.producers.collector import Collector
from shadowtap.producers.wsgi import ShadowtapWSGIMiddleware
from shadowtap.types import Environ, Receive, Scope, Send, StartResponse

from .conftest import Recorder
from .test_collector import _run as collect

KEY = "staging-shares-this-with-the-replayer"
RID = "0190a0b1-7c2d-7e3f-8a4b-5c6d7e8f9012"
TARGET = "/api/orders?page=2&q=a%20b"
HOUR_MS = 3_600_000

Marking = Callable[[], dict[str, str]]


def _signed(key: str = KEY, age_ms: int = 0, method: str = "POST", rid: str = RID) -> Marking:
    def make() -> dict[str, str]:
        now = time.time_ns() // 1_000_000 - age_ms
        signature = Marker(key).sign(method, TARGET, rid, now_ms=now)
        return {"X-Shadowtap-Signature": signature, "X-Shadowtap-Id": RID}

    return make


CASES = {
    "valid": (_signed(), False),
    "forged": (_signed(key="a guessed key"), True),
    "expired": (_signed(age_ms=HOUR_MS), True),
    "other-method": (_signed(method="GET"), True),
    "other-id": (_signed(rid="another-record"), True),
    "id-only": (lambda: {"X-Shadowtap-Id": RID}, True),
    "unmarked": (dict, True),
}


@pytest.fixture
def staging() -> Recorder:
    return Recorder(marking={"key": KEY})


def _recorded(staging: Recorder, captured: bool) -> None:
    assert len(staging.envelopes) == int(captured)
    assert staging.capturer.metrics.dropped["mirrored"] == int(not captured)


@pytest.mark.parametrize(("marking", "captured"), CASES.values(), ids=CASES.keys())
def test_asgi(staging: Recorder, marking: Marking, captured: bool) -> None:
    seen: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    path, _, query = TARGET.partition("?")
    headers = [(b"host", b"staging"), (b"content-length", b"2")]
    headers += [(k.lower().encode(), v.encode()) for k, v in marking().items()]
    scope = {
        "type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
        "query_string": query.encode(), "headers": headers,
    }  # fmt: skip
    sent: list[object] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"{}"}

    async def send(message: object) -> None:
        sent.append(message)

    asyncio.run(ShadowtapMiddleware(app, capturer=staging.capturer)(scope, receive, send))
    assert seen == [b"{}"] and len(sent) == 2  # the app ran as ever
    _recorded(staging, captured)


@pytest.mark.parametrize(("marking", "captured"), CASES.values(), ids=CASES.keys())
def test_wsgi(staging: Recorder, marking: Marking, captured: bool) -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"ok"]

    environ: Environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/api/orders", "RAW_URI": TARGET,
        "QUERY_STRING": TARGET.partition("?")[2], "CONTENT_LENGTH": "2",
        "wsgi.input": io.BytesIO(b"{}"), "HTTP_HOST": "staging",
    }  # fmt: skip
    environ |= {"HTTP_" + k.upper().replace("-", "_"): v for k, v in marking().items()}
    middleware = ShadowtapWSGIMiddleware(app, capturer=staging.capturer)
    assert b"".join(middleware(environ, _start_response)) == b"ok"
    _recorded(staging, captured)


@pytest.mark.parametrize(("marking", "captured"), CASES.values(), ids=CASES.keys())
def test_collector(staging: Recorder, marking: Marking, captured: bool) -> None:
    head = "".join(f"{k}: {v}\r\n" for k, v in marking().items())
    raw = f"POST {TARGET} HTTP/1.1\r\nHost: staging\r\nContent-Length: 2\r\n{head}"
    raw += "Connection: close\r\n\r\n{}"
    assert collect(Collector(staging.capturer), raw.encode()).startswith(b"HTTP/1.1 204")
    _recorded(staging, captured)


def test_a_capture_with_another_key_records_mirrored_requests() -> None:
    production = Recorder(marking={"key": "production does not know staging's key"})
    path, _, query = TARGET.partition("?")
    environ: Environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(b""),
    }  # fmt: skip
    environ |= {"HTTP_" + k.upper().replace("-", "_"): v for k, v in _signed()().items()}

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    middleware = ShadowtapWSGIMiddleware(app, capturer=production.capturer)
    assert list(middleware(environ, _start_response)) == [b"ok"]
    _recorded(production, True)


def _start_response(
    status: str, headers: object, exc_info: object = None
) -> Callable[[bytes], object]:
    return lambda _data: None
