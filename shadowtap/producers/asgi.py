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
the request is still captured (status 500 if no response had started). Settings are in
:mod:`shadowtap.producers.core`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from shadowtap.config import Settings
from shadowtap.envelope import Headers, Response, new_id
from shadowtap.producers.core import BodyCopy, Capturer, content_length, header_value
from shadowtap.producers.publisher import MetricHook
from shadowtap.types import ASGIApp, Message, Receive, Scope, Send


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
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        if not cap.wants(method, path):
            return await self.app(scope, receive, send)
        request_id = new_id()
        if not cap.sampled(request_id):
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
    """One request/response pair as it streams through; bounded copies only."""

    __slots__ = (
        "_receive",
        "_send",
        "cap",
        "disconnected",
        "error",
        "headers",
        "request",
        "request_ok",
        "response",
        "response_headers",
        "scope",
        "started",
        "status",
        "t0",
        "ts",
    )  # fmt: skip

    def __init__(self, cap: Capturer, scope: Scope, receive: Receive, send: Send) -> None:
        self.cap = cap
        self.scope = scope
        self._receive = receive
        self._send = send
        self.ts = time.time_ns() // 1_000_000
        self.t0 = time.perf_counter()
        self.headers: Headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())
        ]
        self.request_ok = cap.wants_body(header_value(self.headers, "content-type"))
        self.request = BodyCopy(cap.max_request_body, content_length(self.headers))
        self.response = BodyCopy(cap.max_response_body)
        self.response_headers: Headers = []
        self.status = 0
        self.started = False
        self.disconnected = False
        self.error = ""

    async def receive(self) -> Message:
        message = await self._receive()
        try:
            kind = message["type"]
            if kind == "http.request":
                if self.request_ok:
                    self.request.add(message.get("body", b""))
                else:
                    self.request.size += len(message.get("body", b""))
            elif kind == "http.disconnect":
                self.disconnected = True
        except Exception:
            self.cap.metrics.count_dropped("internal-error")
        return message

    async def send(self, message: Message) -> None:
        try:
            kind = message["type"]
            if kind == "http.response.start":
                self.started = True
                self.status = message["status"]
                self.response_headers = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", ())
                ]
                declared = content_length(self.response_headers)
                if not self.cap.wants_body(header_value(self.response_headers, "content-type")):
                    declared = self.cap.max_response_body + 1
                self.response = BodyCopy(self.cap.max_response_body, declared)
            elif kind == "http.response.body":
                self.response.add(message.get("body", b""))
        except Exception:
            self.cap.metrics.count_dropped("internal-error")
        await self._send(message)

    def publish(self, request_id: str, method: str, path: str) -> None:
        with self.cap.guard():
            scope = self.scope
            meta: dict[str, Any] = {}
            if self.disconnected:
                meta["client_disconnected"] = True
            if self.error:
                meta["app_error"] = self.error
            if not self.request_ok:
                meta["request_body_skipped"] = "content-type"
            client = scope.get("client")
            response = Response(
                status=self.status if self.started else 500,
                headers=self.response_headers,
                body=self.response.value(),
                duration_ms=round((time.perf_counter() - self.t0) * 1000, 3),
                body_size=self.response.size,
                truncated=self.response.truncated,
            )
            declared = content_length(self.headers)
            self.cap.publish(
                request_id=request_id,
                ts=self.ts,
                method=method,
                scheme=scope.get("scheme", "http"),
                host=header_value(self.headers, "host") or _server(scope),
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=self.headers,
                body=self.request.value() if self.request_ok else b"",
                body_size=max(self.request.size, declared or 0)
                if self.request.truncated
                else self.request.size,
                truncated=self.request.truncated or (not self.request_ok and self.request.size > 0),
                client=client[0] if client else "",
                response=response,
                meta=meta,
            )


def _server(scope: Scope) -> str:
    server = scope.get("server")
    if not server:
        return ""
    host, port = server
    return f"{host}:{port}" if port else str(host)
