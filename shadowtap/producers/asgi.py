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
size (``meta.request_body_skipped``), never as a complete body. Settings are in
:mod:`shadowtap.producers.core`, that marking in :mod:`shadowtap.producers.exchange`.
"""

from __future__ import annotations

import asyncio

from shadowtap.config import Settings
from shadowtap.gateway import parse_length, scope_path, scope_server, scope_target
from shadowtap.headers import Headers
from shadowtap.producers.core import Capturer
from shadowtap.producers.exchange import BodyCopy, Exchange
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
        path = scope_path(scope)
        request_id = cap.admit(method, path)
        if request_id is None:
            return await self.app(scope, receive, send)
        exchange = _AsgiExchange(cap, scope, receive, send, request_id, method, path)
        if exchange.signature is not None and exchange.mirrored():
            return await self.app(scope, receive, send)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except BaseException as exc:
            exchange.error = type(exc).__name__
            raise
        finally:
            exchange.publish()

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.capturer.flush)
            return message

        return wrapped


class _AsgiExchange(Exchange):
    """An exchange filled in from ASGI messages as they pass: ``receive`` and ``send`` tee.

    Runs on every captured request, so it reads each header list once and guards with
    plain try/except (a context manager would cost more than the rest of the copy).
    """

    __slots__ = ("_receive", "_send", "cap", "raw_headers", "scope", "signature")
    response: BodyCopy  # always: an app's response

    # Positional on purpose: keyword arguments cost about 1,200 instructions per request here.
    def __init__(  # noqa: PLR0917
        self,
        cap: Capturer,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        method: str,
        path: str,
    ) -> None:
        self.cap = cap
        self.scope = scope
        self._receive = receive
        self._send = send
        self.raw_headers = scope.get("headers") or ()
        host = length = content_type = signature = None
        chunked = False
        marked = cap.marking_headers.asgi[0]
        marked_size = len(marked)
        for key, value in self.raw_headers:
            size = len(key)
            if size == 4 and key.lower() == b"host":
                host = value
            elif size == 14 and key.lower() == b"content-length":
                length = value
            elif size == 12 and key.lower() == b"content-type":
                content_type = value
            elif size == 17 and key.lower() == b"transfer-encoding":
                chunked = True
            elif size == marked_size and key.lower() == marked:
                signature = value
        self.signature = signature
        request = cap.request_copy(
            parse_length(length),
            chunked=chunked,
            content_type=None if content_type is None else content_type.decode("latin-1"),
        )
        super().__init__(request_id, method, path, request, BodyCopy(cap.max_response_body))
        self.host = host.decode("latin-1") if host is not None else scope_server(scope)

    def mirrored(self) -> bool:
        """A signed request: whether its marking verifies (then capture leaves it alone)."""
        try:
            id_name = self.cap.marking_headers.asgi[1]
            record_id = next((v for k, v in self.raw_headers if k.lower() == id_name), None)
            return self.cap.mirrored(
                self.method,
                scope_target(self.scope),
                (self.signature or b"").decode("latin-1"),
                None if record_id is None else record_id.decode("latin-1"),
            )
        except Exception:
            self.cap.failsafe.caught()
            return False

    async def receive(self) -> Message:
        message = await self._receive()
        try:
            if message["type"] == "http.request":
                self.request.add(message.get("body", b""))
                if not message.get("more_body", False):
                    self.whole = True
            elif message["type"] == "http.disconnect":
                self.cut = True
        except Exception:
            self.cap.failsafe.caught()
        return message

    async def send(self, message: Message) -> None:
        try:
            if message["type"] == "http.response.body":
                self.response.add(message.get("body", b""))
            elif message["type"] == "http.response.start":
                self._start(message)
        except Exception:
            self.cap.failsafe.caught()
        await self._send(message)

    def _start(self, message: Message) -> None:
        self.status = message["status"]
        headers: Headers = []
        length = content_type = None
        for key, value in message.get("headers", ()):
            text = value.decode("latin-1")
            headers.append((key.decode("latin-1"), text))
            if len(key) == 14 and length is None and key.lower() == b"content-length":
                length = text
            elif len(key) == 12 and content_type is None and key.lower() == b"content-type":
                content_type = text
        self.response_headers = headers
        self.response = self.cap.response_copy(parse_length(length), content_type)

    def publish(self) -> None:
        try:
            scope = self.scope
            self.scheme = scope.get("scheme", "http")
            self.query = scope.get("query_string", b"").decode("latin-1")
            self.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.raw_headers]
            client = scope.get("client")
            self.client = client[0] if client else ""
            if self.cut:
                self.meta["client_disconnected"] = True
        except Exception:
            self.cap.failsafe.caught()
            return
        self.cap.publish(self)
