"""ASGI capture middleware: FastAPI, Starlette, Django ASGI, any ASGI 3 app.

    from shadowtap.producers.asgi import ShadowtapMiddleware

    app = ShadowtapMiddleware(app)                       # settings from SHADOWTAP_* / file
    app = ShadowtapMiddleware(app, settings=Settings.load("shadowtap.toml"))
    app.add_middleware(ShadowtapMiddleware)              # FastAPI / Starlette

Capture never changes what the app sees or returns: ``receive`` is wrapped as a tee that
hands every message on unchanged (nothing is read ahead), ``send`` is wrapped to note the
status, headers and a bounded copy of the body, and the record is queued after the last
body chunk has been sent. Websocket and lifespan scopes pass straight through; lifespan
shutdown flushes the queue with a bounded timeout. App exceptions propagate untouched and
the request is still captured (status 500 if no response had started). A body the app did
not read to its end, or that the client cut off, is recorded as missing with its declared
size (``meta.request_body_skipped``), never as a complete body. Settings and that marking
are in :mod:`shadowtap.producers.core`.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

from shadowtap.config import Settings
from shadowtap.envelope import Response, new_id
from shadowtap.headers import Headers, header_value
from shadowtap.producers.core import (
    PATH_SAFE,
    BodyCopy,
    Capturer,
    content_length,
    parse_length,
)
from shadowtap.producers.publisher import MetricHook
from shadowtap.types import ASGIApp, Message, Receive, Scope, Send


def scope_path(scope: Scope) -> str:
    """The path as the client sent it: ``raw_path`` when the server gives it, else re-quoted."""
    raw: bytes | None = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return urllib.parse.quote(scope.get("root_path", "") + scope["path"], safe=PATH_SAFE)


class ShadowtapMiddleware:
    """Copies each captured request and its production response to Kafka."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings | None = None,
        *,
        capturer: Capturer | None = None,
        metric_hook: MetricHook | None = None,
    ) -> None:
        self.app = app
        self.capturer = capturer or Capturer(settings, metric_hook=metric_hook)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                return await self.app(scope, self._lifespan_receive(receive), send)
            return await self.app(scope, receive, send)
        cap = self.capturer
        method: str = scope["method"]
        path = scope_path(scope)
        if not cap.wants(method, path):
            return await self.app(scope, receive, send)
        request_id = new_id()
        if not cap.admits(request_id):
            return await self.app(scope, receive, send)
        exchange = _Exchange(cap, scope, receive, send)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except BaseException as exc:
            exchange.error = type(exc).__name__
            raise
        finally:
            exchange.publish(request_id, method, path)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.capturer.flush)
            return message

        return wrapped


class _Exchange:
    """One request/response pair as it streams through; bounded copies only.

    Runs on every captured request, so it reads each header list once and guards with
    plain try/except (a context manager would cost more than the rest of the copy).
    """

    __slots__ = (
        "_receive", "_send", "cap", "disconnected", "error", "host", "raw_headers", "request",
        "request_read", "response", "response_headers", "scope", "started", "status", "t0",
        "ts",
    )  # fmt: skip

    def __init__(self, cap: Capturer, scope: Scope, receive: Receive, send: Send) -> None:
        self.cap = cap
        self.scope = scope
        self._receive = receive
        self._send = send
        self.ts = time.time_ns() // 1_000_000
        self.t0 = time.perf_counter()
        self.raw_headers = scope.get("headers") or ()
        host = length = content_type = None
        chunked = False
        for key, value in self.raw_headers:
            if len(key) == 4 and key.lower() == b"host":
                host = value
            elif len(key) == 14 and key.lower() == b"content-length":
                length = value
            elif len(key) == 12 and key.lower() == b"content-type":
                content_type = value
            elif len(key) == 17 and key.lower() == b"transfer-encoding":
                chunked = True
        self.host = host.decode("latin-1") if host is not None else _server(scope)
        self.request = cap.request_copy(
            parse_length(length),
            chunked=chunked,
            content_type=None if content_type is None else content_type.decode("latin-1"),
        )
        self.request_read = False
        self.response = BodyCopy(cap.max_response_body)
        self.response_headers: Headers = []
        self.status = 0
        self.started = False
        self.disconnected = False
        self.error = ""

    async def receive(self) -> Message:
        message = await self._receive()
        try:
            if message["type"] == "http.request":
                self.request.add(message.get("body", b""))
                if not message.get("more_body", False):
                    self.request_read = True
            elif message["type"] == "http.disconnect":
                self.disconnected = True
        except Exception:
            self.cap.metrics.count_dropped("internal-error")
        return message

    async def send(self, message: Message) -> None:
        try:
            if message["type"] == "http.response.body":
                self.response.add(message.get("body", b""))
            elif message["type"] == "http.response.start":
                self._start(message)
        except Exception:
            self.cap.metrics.count_dropped("internal-error")
        await self._send(message)

    def _start(self, message: Message) -> None:
        self.started = True
        self.status = message["status"]
        headers = self.response_headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", ())
        ]
        limit = self.cap.max_response_body
        declared = content_length(headers)
        if not self.cap.wants_body(header_value(headers, "content-type")):
            declared = limit + 1
        self.response = BodyCopy(limit, declared)

    def publish(self, request_id: str, method: str, path: str) -> None:
        try:
            scope = self.scope
            meta: dict[str, Any] = {}
            if self.disconnected:
                meta["client_disconnected"] = True
            if self.error:
                meta["app_error"] = self.error
            request, response = self.request, self.response
            request.finish(whole=self.request_read, disconnected=self.disconnected)
            client = scope.get("client")
            self.cap.publish(
                request_id=request_id,
                ts=self.ts,
                method=method,
                scheme=scope.get("scheme", "http"),
                host=self.host,
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers],
                request=request,
                client=client[0] if client else "",
                response=Response(
                    status=self.status if self.started else 500,
                    headers=self.response_headers,
                    body=response.value(),
                    duration_ms=round((time.perf_counter() - self.t0) * 1000, 3),
                    body_size=response.size,
                    truncated=response.truncated,
                ),
                meta=meta,
            )
        except Exception:
            self.cap.metrics.count_dropped("internal-error")


def _server(scope: Scope) -> str:
    server = scope.get("server")
    if not server:
        return ""
    host, port = server
    return f"{host}:{port}" if port else str(host)
