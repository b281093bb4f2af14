"""``shadowtap collect``: an HTTP sink for mirrored copies from nginx, Envoy and Istio.

    shadowtap collect --port 8787 [--host 0.0.0.0] [--config shadowtap.toml]

Point a proxy's mirror at it (examples in ``deploy/nginx``, ``deploy/envoy``,
``deploy/istio``). Each request it receives is a copy of a production request: it answers
``204`` as soon as the request has been read and queues the envelope without waiting on
Kafka, because nginx holds a client's next request until its mirror subrequest finishes
(see FINDINGS.md): whatever the collector costs, production pays.

- Envoy and Istio append ``-shadow`` to the Host/authority of mirrored requests: it is
  removed again (``api.example.com-shadow:8080`` → ``api.example.com:8080``).
- The client address comes from ``X-Forwarded-For`` (first hop) or ``X-Real-IP``, the
  scheme from ``X-Forwarded-Proto``.
- ``[capture] collector_secret``: when set, requests must carry it in
  ``collector_secret_header`` (default ``X-Shadowtap-Secret``), else they get 403 and are
  counted; the header never reaches the record.
- A proxy's copy has no production response, so records carry none. All other capture
  settings (sampling, path rules, body limits, redaction) apply as in the middleware.

Plain asyncio and HTTP/1.1 keep-alive: the capture side imports nothing beyond the
standard library, confluent-kafka and orjson.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
import time

from shadowtap.config import Settings
from shadowtap.envelope import Headers, new_id
from shadowtap.producers.core import BodyCopy, Capturer, header_value

log = logging.getLogger("shadowtap.collect")

_MAX_HEAD = 64 * 1024
_NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
_FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class BadRequest(Exception):
    """The peer did not speak HTTP/1.x as we understand it."""


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


class Collector:
    """Reads mirrored requests off keep-alive connections and queues them as envelopes."""

    def __init__(self, capturer: Capturer) -> None:
        self.capturer = capturer
        capture = capturer.settings.capture
        self._secret = capture.collector_secret.encode()
        self._secret_header = capture.collector_secret_header.lower()
        self.forbidden = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while await self._one(reader, writer, peer[0] if peer else ""):
                pass
        except (BadRequest, asyncio.LimitOverrunError, ValueError):
            self.capturer.metrics.count_dropped("bad-request")
            with contextlib.suppress(ConnectionError):
                writer.write(_BAD_REQUEST)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise BadRequest("connection closed inside the request head") from exc
            return False
        ts = time.time_ns() // 1_000_000
        lines = head[:-4].decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError as exc:
            raise BadRequest(f"bad request line {lines[0][:80]!r}") from exc
        headers: Headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadRequest(f"bad header line {line[:80]!r}")
            headers.append((name.strip(), value.strip()))
        cap = self.capturer
        path, _, query = target.partition("?")
        wanted = cap.wants(method, path)
        request_id = new_id()
        wanted = wanted and cap.admits(request_id)
        length = header_value(headers, "content-length")
        copy = cap.request_copy(
            int(length) if length is not None else None,
            chunked=header_value(headers, "transfer-encoding") is not None,
            content_type=header_value(headers, "content-type") if wanted else "-",
        )
        if "chunked" in (header_value(headers, "transfer-encoding") or "").lower():
            await _read_chunked(reader, copy)
        elif length is not None:
            await _read_exact(reader, int(length), copy)
        keep_alive = _keep_alive(version, headers)
        if self._secret and not hmac.compare_digest(
            (header_value(headers, self._secret_header) or "").encode("latin-1"), self._secret
        ):
            self.forbidden += 1
            cap.metrics.count_dropped("forbidden")
            writer.write(_FORBIDDEN)
            await writer.drain()
            return keep_alive
        writer.write(_NO_CONTENT)
        await writer.drain()
        if wanted:
            self._publish(
                request_id=request_id, ts=ts, method=method, path=path, query=query,
                headers=headers, copy=copy, peer=peer,
            )  # fmt: skip
        return keep_alive

    def _publish(
        self, *, request_id: str, ts: int, method: str, path: str, query: str,
        headers: Headers, copy: BodyCopy, peer: str,
    ) -> None:  # fmt: skip
        with self.capturer.guard():
            headers = [(k, v) for k, v in headers if k.lower() != self._secret_header]
            host, shadowed = unshadow(header_value(headers, "host") or "")
            if shadowed:
                headers = [(k, host if k.lower() == "host" else v) for k, v in headers]
            forwarded = header_value(headers, "x-forwarded-for")
            client = (
                (forwarded.split(",")[0].strip() if forwarded else None)
                or header_value(headers, "x-real-ip")
                or peer
            )
            meta: dict[str, object] = {"capture": "collector"}
            if shadowed:
                meta["unshadowed_host"] = True
            self.capturer.publish(
                request_id=request_id, ts=ts, method=method,
                scheme=header_value(headers, "x-forwarded-proto") or "http",
                host=host, path=path, query=query, headers=headers,
                request=copy,
                client=client, response=None, meta=meta,
            )  # fmt: skip


async def _read_exact(reader: asyncio.StreamReader, length: int, copy: BodyCopy) -> None:
    if length < 0:
        raise BadRequest("negative content-length")
    while length > 0:
        chunk = await reader.read(min(length, 256 * 1024))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", length)
        copy.add(chunk)
        length -= len(chunk)


async def _read_chunked(reader: asyncio.StreamReader, copy: BodyCopy) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise BadRequest("bad chunk size") from exc
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return
        await _read_exact(reader, size, copy)
        await reader.readexactly(2)


def _keep_alive(version: str, headers: Headers) -> bool:
    connection = (header_value(headers, "connection") or "").lower()
    if version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


async def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8787) -> None:
    """Run the collector until SIGINT/SIGTERM, then flush what is queued."""
    capturer = Capturer(settings)
    collector = Collector(capturer)
    server = await asyncio.start_server(collector.handle, host, port, limit=_MAX_HEAD)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    poller = asyncio.create_task(_serve_delivery_reports(capturer, stop))
    log.info("shadowtap collect listening on %s:%d → %s", host, port, settings.topics.captured)
    async with server:
        await stop.wait()
    await poller
    await asyncio.to_thread(capturer.flush)


async def _serve_delivery_reports(capturer: Capturer, stop: asyncio.Event) -> None:
    """poll(0) also runs on each publish; this covers quiet periods."""
    while not stop.is_set():
        capturer.publisher.producer.poll(0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
