"""Real HTTP targets, replayer workers (in a thread or as ``shadowtap replay`` subprocesses)
and readers of the results/DLQ topics.

Every server, thread and process a test starts is stopped at teardown (processes: SIGTERM,
then SIGKILL), so no test leaves anything running.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from confluent_kafka import TopicPartition
from multidict import CIMultiDict

from shadowtap import results
from shadowtap.config import Settings
from shadowtap.envelope import Envelope, encode, kafka_headers
from shadowtap.kafka import create_topics, make_consumer, make_producer
from shadowtap.replayers.worker import Replayer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes
    at: float


class TargetServer:
    """An aiohttp server on 127.0.0.1 in its own thread that records every request.

    ``mode``: ``ok`` (200 + small body), ``status:503``, ``hang`` (never answers),
    ``reset`` (sends half a body, then closes the connection), ``slow:0.2`` (answers late).
    """

    def __init__(self, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.port = port or free_port()
        self._ssl = ssl_context
        self.mode = "ok"
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._release = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("target server did not start")

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def ids(self) -> list[str]:
        with self._lock:
            return [s.headers.get("X-Shadowtap-Id", "") for s in self.seen]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._cleanup())
        self._loop.close()

    async def _start(self) -> None:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._ssl).start()

    async def _cleanup(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            self.seen.append(
                Seen(
                    request.method,
                    request.path,
                    request.query_string,
                    CIMultiDict(request.headers),
                    body,
                    time.monotonic(),
                )
            )
        mode = self.mode
        if mode.startswith("status:"):
            return web.Response(status=int(mode.split(":")[1]), text="failing")
        if mode == "hang":
            await self._release.wait()
            return web.Response(status=200)
        if mode == "reset":
            resp = web.StreamResponse(status=200)
            resp.content_length = 10_000
            await resp.prepare(request)
            await resp.write(b"x" * 100)
            assert request.transport is not None
            request.transport.abort()
            return resp
        if mode.startswith("redirect:"):
            raise web.HTTPFound(mode.split(":", 1)[1])
        if mode.startswith("slow:"):
            await asyncio.sleep(float(mode.split(":")[1]))
        return web.Response(status=200, text="ok", headers={"X-Target": "yes"})

    def release(self) -> None:
        """Let every hanging request answer 200."""
        self.mode = "ok"
        self._loop.call_soon_threadsafe(self._release.set)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


@pytest.fixture
def target() -> Iterator[TargetServer]:
    server = TargetServer()
    yield server
    server.stop()


@pytest.fixture
def late_target() -> Iterator[Callable[[int], TargetServer]]:
    """Start a target later, on a port chosen before (connections are refused until then)."""
    servers: list[TargetServer] = []

    def start(port: int) -> TargetServer:
        servers.append(TargetServer(port))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def rsettings(settings: Settings, unique_name: Callable[[str], str]) -> Settings:
    """Settings with topics created and a replayer group of this test's own."""
    create_topics(settings)
    return dataclasses.replace(
        settings,
        replayer=dataclasses.replace(
            settings.replayer,
            group=unique_name("replay"),
            commit_interval_s=0.2,
            session_timeout_s=6.0,
            drain_timeout_s=5.0,
        ),
    )


def with_replayer(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, replayer=dataclasses.replace(settings.replayer, **changes))


def produce(
    settings: Settings, records: list[Envelope | bytes], key: Callable[[int], bytes] | None = None
) -> None:
    """Write records to the mirror topic (key: the envelope id, or ``key(i)``)."""
    producer = make_producer(settings.kafka)
    for i, record in enumerate(records):
        if isinstance(record, Envelope):
            k = key(i) if key else record.id.encode()
            producer.produce(
                settings.topics.mirror, encode(record), key=k, headers=kafka_headers(record)
            )
        else:
            producer.produce(settings.topics.mirror, record, key=key(i) if key else None)
        producer.poll(0)
    assert producer.flush(30) == 0


def envelopes(n: int, path: str = "/api/items", **kw: Any) -> list[Envelope]:
    return [
        Envelope(method="POST", path=f"{path}/{i}", host="shop.example", body=b'{"n":%d}' % i, **kw)
        for i in range(n)
    ]


class ThreadWorker:
    """A Replayer running in a thread with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.replayer = Replayer(settings)
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            await self.replayer.run(self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "replayer thread did not stop"


@pytest.fixture
def thread_worker() -> Iterator[Callable[[Settings], ThreadWorker]]:
    workers: list[ThreadWorker] = []

    def start(settings: Settings) -> ThreadWorker:
        w = ThreadWorker(settings)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()


class ProcessWorker:
    """One ``shadowtap replay`` subprocess with its log file."""

    def __init__(self, settings: Settings, log: Path, *extra: str) -> None:
        self.log = log
        self._fh = log.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
        t, r = settings.topics, settings.replayer
        env.update(
            {
                "SHADOWTAP_TOPICS_MIRROR": t.mirror,
                "SHADOWTAP_TOPICS_RESULTS": t.results,
                "SHADOWTAP_TOPICS_DLQ": t.dlq,
                "SHADOWTAP_TOPICS_RETRY_PREFIX": t.retry_prefix,
                "SHADOWTAP_REPLAYER_COMMIT_INTERVAL_S": str(r.commit_interval_s),
                "SHADOWTAP_REPLAYER_SESSION_TIMEOUT_S": str(r.session_timeout_s),
                "SHADOWTAP_REPLAYER_DRAIN_TIMEOUT_S": str(r.drain_timeout_s),
                "SHADOWTAP_REPLAYER_CONNECT_RETRY_S": str(r.connect_retry_s),
            }
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shadowtap.cli",
                "replay",
                "--bootstrap",
                settings.kafka.bootstrap,
                "--target",
                r.target,
                "--group",
                r.group,
                *extra,
            ],
            env=env,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait(10)
        self._fh.close()
        return self.proc.returncode

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
def process_worker(tmp_path: Path) -> Iterator[Callable[..., ProcessWorker]]:
    workers: list[ProcessWorker] = []

    def start(settings: Settings, *extra: str) -> ProcessWorker:
        w = ProcessWorker(settings, tmp_path / f"worker-{len(workers)}.log", *extra)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.stop()


class Reader:
    """Reads a topic from the beginning, keeping every record."""

    def __init__(self, settings: Settings, topic: str, group: str) -> None:
        self.consumer = make_consumer(settings.kafka, group)
        self.consumer.subscribe([topic])
        self.messages: list[Any] = []

    def poll(self) -> None:
        for msg in self.consumer.consume(500, 0.2):
            if not msg.error():
                self.messages.append(msg)

    def results(self) -> list[results.Result]:
        return [results.decode(m.value()) for m in self.messages]

    def until(self, done: Callable[[Reader], bool], limit_s: float = 60, why: str = "") -> None:
        deadline = time.monotonic() + limit_s
        while not done(self):
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {limit_s}s with {len(self.messages)} records {why}")
            self.poll()

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def reader(
    settings: Settings, unique_name: Callable[[str], str]
) -> Iterator[Callable[[str], Reader]]:
    readers: list[Reader] = []

    def make(topic: str) -> Reader:
        r = Reader(settings, topic, unique_name("reader"))
        readers.append(r)
        return r

    yield make
    for r in readers:
        r.close()


def committed(settings: Settings, group: str) -> dict[int, int]:
    """The group's committed offset per partition of the mirror topic (-1001: none)."""
    consumer = make_consumer(settings.kafka, group)
    try:
        parts = [
            TopicPartition(settings.topics.mirror, p) for p in range(settings.topics.partitions)
        ]
        return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)}
    finally:
        consumer.close()
