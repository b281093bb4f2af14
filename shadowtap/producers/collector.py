"""``shadowtap collect``: an HTTP sink for mirrored copies from nginx, Envoy and Istio.

    pip install 'shadowtap[collector]'
    shadowtap collect --port 8787 [--host 0.0.0.0] [--metrics-port 9109] [--config FILE]

Point a proxy's mirror at it (examples in ``deploy/nginx``, ``deploy/envoy``,
``deploy/istio``). Each request it receives is a copy of a production request: it answers
``204`` as soon as the request has been read and queues the envelope without waiting on
Kafka, because nginx holds a client's next keep-alive request until that request's mirror
subrequest has been answered: whatever the collector costs, production pays
(``bench/collect.py``).

- Envoy and Istio append ``-shadow`` to the Host/authority of mirrored requests: it is
  removed again (``api.example.com-shadow:8080`` → ``api.example.com:8080``).
- The client address comes from ``X-Forwarded-For`` (first hop) or ``X-Real-IP``, the
  scheme from ``X-Forwarded-Proto``.
- ``[capture] collector_host``/``collector_port`` (``--host``/``--port``): where it listens;
  ``collector_secret`` (needed beyond loopback: doctor fails without it): requests must carry
  it in ``collector_secret_header`` (default ``X-Shadowtap-Secret``), else they get 403 and
  are counted; the header never reaches the record.
- ``[capture] collector_metrics_port`` (``--metrics-port``; 0: off): Prometheus
  ``/metrics`` with the capture counters (``shadowtap_capture_dropped{reason}`` counts
  rejected and refused requests by reason).
- A proxy's copy has no production response, so records carry none. All other capture
  settings (sampling, path rules, body limits, redaction, loop prevention) apply as in the
  middleware.

HTTP/1.1 is parsed by httptools (llhttp, Node.js's parser, as uvicorn uses it), in the
``collector`` extra so the middleware's install stays light. A request RFC 9112 says to
reject gets ``400``, the connection is closed, nothing is recorded, and it is counted as
``rejected-<reason>``: ``conflicting-content-length`` (a repeated Content-Length),
``transfer-encoding-with-content-length``, ``bad-content-length``,
``bad-transfer-encoding`` (chunked not last, or unknown), ``bad-chunk`` (size or framing),
``obs-fold`` (a folded header line), ``head-too-large`` (target and header fields over
64 KiB), ``bad-host`` (HTTP/1.1 without exactly one Host), ``bad-version`` (not HTTP/1.x),
``bad-request-line`` and ``malformed`` (anything else llhttp refuses). Which of two lengths
frames a body decides where the next request starts (request smuggling): never guess.

A connection that closes inside a request's body, after its head, is recorded marked as
the middleware marks it (``truncated``, the declared size, ``meta.request_body_skipped =
"client-disconnected"``, see :mod:`shadowtap.producers.exchange`); one that closes inside a
head is counted as ``closed-mid-head``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
import time
from types import ModuleType
from typing import Any

from shadowtap.config import Settings
from shadowtap.errors import ConfigError
from shadowtap.gateway import parse_length
from shadowtap.headers import Headers, without
from shadowtap.producers.core import Capturer
from shadowtap.producers.exchange import Exchange

log = logging.getLogger("shadowtap.collect")

MAX_HEAD = 64 * 1024
# How long a closing connection keeps reading (and dropping) what the peer still sends.
LINGER_S = 2.0
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
_FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"

# llhttp's error messages → the reason a rejection is counted under; first match wins.
_REASONS = (
    ("duplicate content-length", "conflicting-content-length"),
    ("can't be present with", "transfer-encoding-with-content-length"),
    ("content-length", "bad-content-length"),
    ("transfer-encoding", "bad-transfer-encoding"),
    ("chunk", "bad-chunk"),
    ("whitespace after header value", "obs-fold"),
    ("method", "bad-request-line"),
    ("url", "bad-request-line"),
    ("version", "bad-request-line"),
)


def httptools_module() -> ModuleType:
    """httptools, or a ConfigError that says how to install it."""
    try:
        import httptools
    except ImportError as exc:
        raise ConfigError(
            "shadowtap collect parses HTTP with httptools, which is not installed: "
            "pip install 'shadowtap[collector]'"
        ) from exc
    return httptools


def unshadow(host: str) -> tuple[str, bool]:
    """Undo Envoy/Istio's ``-shadow`` host suffix; return the host and whether it had one."""
    name, sep, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    if not sep:
        name, port = host, ""
    if port.endswith("-shadow"):
        return f"{name}:{port[: -len('-shadow')]}", True
    if name.endswith("-shadow"):
        name = name[: -len("-shadow")]
        return (f"{name}:{port}" if sep else name), True
    return host, False


def rejection_reason(message: str) -> str:
    """The counted reason for one of llhttp's error messages."""
    lowered = message.lower()
    return next((reason for key, reason in _REASONS if key in lowered), "malformed")


class Collector:
    """Turns mirrored requests into envelopes; one :class:`_Connection` per TCP connection.

    ``loop.create_server(collector.connection, host, port)`` serves it.
    """

    def __init__(self, capturer: Capturer) -> None:
        self.capturer = capturer
        capture = capturer.settings.capture
        self._secret = capture.collector_secret.encode()
        self._secret_header = capture.collector_secret_header.lower()
        self._secret_key = self._secret_header.encode("latin-1")
        # Headers a request's ``named`` keeps (see _Request).
        self.named = frozenset(
            {b"host", b"content-length", b"transfer-encoding", b"content-type",
             b"x-forwarded-for", b"x-real-ip", b"x-forwarded-proto", self._secret_key,
             *capturer.marking_headers.asgi}
        )  # fmt: skip
        self.max_head = MAX_HEAD
        self.forbidden = 0
        httptools = httptools_module()
        self.parser_class: Any = httptools.HttpRequestParser
        self.parser_error: type[Exception] = httptools.HttpParserError
        self.callback_error: type[Exception] = httptools.HttpParserCallbackError
        self.upgrade: type[Exception] = httptools.HttpParserUpgrade

    def connection(self) -> _Connection:
        return _Connection(self)

    def reject(self, reason: str) -> None:
        self.capturer.metrics.count_dropped(f"rejected-{reason}")
        log.debug("rejected a request: %s", reason)

    def allowed(self, request: _Request) -> bool:
        """The shared secret, when one is configured, is there (compared in constant time)."""
        if not self._secret:
            return True
        given = request.named.get(self._secret_key, "").encode("latin-1")
        if hmac.compare_digest(given, self._secret):
            return True
        self.forbidden += 1
        self.capturer.metrics.count_dropped("forbidden")
        return False

    def begin(self, request: _Request) -> None:
        """The head is complete: capture the request if the capture rules admit it."""
        cap = self.capturer
        path = request.target.partition("?")[0]
        request_id = cap.admit(request.method, path)
        if request_id is None:
            return
        named = request.named
        signature_key, id_key = cap.marking_headers.asgi
        signature = named.get(signature_key)
        if signature is not None and cap.mirrored(
            request.method, request.target.encode("latin-1"), signature, named.get(id_key)
        ):
            return
        copy = cap.request_copy(
            parse_length(named.get(b"content-length")),
            chunked=b"transfer-encoding" in named,
            content_type=named.get(b"content-type"),
        )
        exchange = request.exchange = Exchange(request_id, request.method, path, copy, None)
        exchange.ts = request.ts  # its first byte, not the end of its head
        exchange.meta["capture"] = "collector"

    def publish(self, request: _Request, peer: str, *, whole: bool) -> None:
        """The request ended, ``whole`` or cut off by the peer: queue its record."""
        exchange = request.exchange
        if exchange is None:
            return
        with self.capturer.failsafe:
            named, headers = request.named, request.headers
            if self._secret_key in named:
                headers = without(headers, {self._secret_header})
            host, shadowed = unshadow(named.get(b"host", ""))
            if shadowed:
                headers = [(k, host if k.lower() == "host" else v) for k, v in headers]
                exchange.meta["unshadowed_host"] = True
            forwarded = named.get(b"x-forwarded-for")
            exchange.client = (
                (forwarded.split(",")[0].strip() if forwarded else None)
                or named.get(b"x-real-ip")
                or peer
            )
            exchange.scheme = named.get(b"x-forwarded-proto") or "http"
            exchange.host = host
            exchange.query = request.target.partition("?")[2]
            exchange.headers = headers
            exchange.whole, exchange.cut = whole, not whole
            self.capturer.publish(exchange)


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing: the request is refused."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Request:
    """One request as the parser hands it over."""

    __slots__ = ("exchange", "headers", "hosts", "method", "named", "target", "ts")

    def __init__(self) -> None:
        self.ts = time.time_ns() // 1_000_000
        self.target = ""
        self.headers: Headers = []
        # The first value of each header the collector reads (lowercase name), so that no
        # request's header list is searched more than once.
        self.named: dict[bytes, str] = {}
        self.hosts = 0
        self.method = ""
        self.exchange: Exchange | None = None  # only for a captured request


class _Connection(asyncio.Protocol):
    """One keep-alive connection: llhttp's callbacks build requests, answered in order."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.parser = collector.parser_class(self)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.request: _Request | None = None  # between its first byte and its last
        self.in_body = False
        self.head_bytes = 0  # bytes received while a head was incomplete
        self.head_size = 0  # target, header names and values of the current message
        self.url = b""
        self.closing = False
        self.linger: asyncio.TimerHandle | None = None

    # -- transport events -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else ""

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if not self.in_body:
            self.head_bytes += len(data)
        collector = self.collector
        try:
            self.parser.feed_data(data)
        except collector.upgrade:
            # Upgrade or CONNECT: answered like any request, but the stream is not HTTP
            # after it, so the connection ends here.
            self._close()
            return
        except collector.callback_error as exc:
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self._reject(cause.reason)
            else:  # our own bug: count it, never take the process down
                collector.capturer.failsafe.caught(cause)
                self._close()
            return
        except collector.parser_error as exc:
            if not self.closing:  # bytes after ``Connection: close`` are ignored
                self._reject(rejection_reason(str(exc)))
            return
        if not self.in_body and not self.closing and self.head_bytes > collector.max_head:
            # Bounds memory while a head is still arriving; on_headers_complete checks the
            # exact size once it is whole.
            self._reject("head-too-large")

    def eof_received(self) -> bool:
        self._end_of_stream()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_of_stream()
        if self.linger is not None:
            self.linger.cancel()

    def pause_writing(self) -> None:
        # The peer is not reading our answers: stop reading its requests until it does.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # -- llhttp callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.request = _Request()
        self.url = b""
        self.head_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        if self.head_size > self.collector.max_head:
            raise _Reject("head-too-large")
        request = self.request
        if request is None or self.in_body:  # trailer fields are counted, not kept
            return
        text = value.decode("latin-1")
        request.headers.append((name.decode("latin-1"), text))
        key = name.lower()
        if key in self.collector.named:
            if key == b"host":
                request.hosts += 1
            request.named.setdefault(key, text)

    def on_headers_complete(self) -> None:
        request = self.request
        assert request is not None
        parser = self.parser
        version = parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise _Reject("bad-version")
        if request.hosts > 1 or (request.hosts == 0 and version == "1.1"):
            raise _Reject("bad-host")  # RFC 9112 §3.2
        self.head_bytes = 0
        self.in_body = True
        request.method = parser.get_method().decode("latin-1")
        request.target = self.url.decode("latin-1")
        self.collector.begin(request)

    def on_body(self, body: bytes) -> None:
        request = self.request
        if request is not None and request.exchange is not None:
            request.exchange.request.add(body)

    def on_message_complete(self) -> None:
        request, self.request = self.request, None
        self.in_body = False
        transport = self.transport
        if request is None or transport is None:
            return
        keep_alive = self.parser.should_keep_alive()
        if not self.collector.allowed(request):
            transport.write(_FORBIDDEN)
        else:
            transport.write(_NO_CONTENT)
            self.collector.publish(request, self.peer, whole=True)
        if not keep_alive:
            self._close()

    # -- endings --------------------------------------------------------------------------

    def _reject(self, reason: str) -> None:
        self.collector.reject(reason)
        self.request = None
        if self.transport is not None and not self.closing:
            with contextlib.suppress(RuntimeError):
                self.transport.write(_BAD_REQUEST)
        self._close()

    def _end_of_stream(self) -> None:
        """The peer closed: a request cut inside its body is recorded as such."""
        request, self.request = self.request, None
        if request is None or self.closing:
            return
        if not self.in_body:
            self.collector.capturer.metrics.count_dropped("closed-mid-head")
            return
        self.in_body = False
        if request.exchange is not None and self.collector.allowed(request):
            self.collector.publish(request, self.peer, whole=False)

    def _close(self) -> None:
        """Lingering close (RFC 9112 §9.6): answers are sent, then what still comes is dropped.

        Closing outright with unread input makes the kernel reset the connection, and the
        peer may lose the answer (a 400 among them) before reading it.
        """
        if self.closing:
            return
        self.closing = True
        transport = self.transport
        if transport is None:
            return
        if transport.can_write_eof():
            transport.write_eof()  # after what is buffered has been written
            self.linger = asyncio.get_running_loop().call_later(LINGER_S, transport.close)
        else:
            transport.close()


async def serve(settings: Settings) -> None:
    """Run the collector where ``[capture]`` says until SIGINT/SIGTERM, then flush what is
    queued."""
    capture = settings.capture
    capturer = Capturer(settings)
    collector = Collector(capturer)
    if capture.collector_metrics_port:
        _serve_metrics(capturer, capture.collector_metrics_port)
    loop = asyncio.get_running_loop()
    host, port = capture.collector_host, capture.collector_port
    server = await loop.create_server(collector.connection, host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    poller = asyncio.create_task(_serve_delivery_reports(capturer, stop))
    log.info("shadowtap collect listening on %s:%d → %s", host, port, settings.topics.captured)
    async with server:
        await stop.wait()
    await poller
    await asyncio.to_thread(capturer.flush)


def _serve_metrics(capturer: Capturer, port: int) -> None:
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError as exc:
        raise ConfigError(
            "collector_metrics_port needs prometheus-client: pip install 'shadowtap[collector]'"
        ) from exc
    registry = CollectorRegistry()
    capturer.metrics.register_prometheus(registry, capturer.source)
    start_http_server(port, registry=registry)
    log.info("metrics on :%d/metrics", port)


async def _serve_delivery_reports(capturer: Capturer, stop: asyncio.Event) -> None:
    """poll(0) also runs on each publish; this covers quiet periods."""
    while not stop.is_set():
        capturer.publisher.producer.poll(0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
