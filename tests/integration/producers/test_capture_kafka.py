"""Capture against a real broker: records arrive; Kafka down at start or mid-traffic costs
the app nothing, and every lost record is counted."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

from shadowtap.config import Settings
from shadowtap.devkafka import LocalKafka, free_port
from shadowtap.envelope import Envelope, decode
from shadowtap.kafka import create_topics, make_consumer
from shadowtap.producers.asgi import ShadowtapMiddleware
from shadowtap.producers.core import Capturer
from shadowtap.types import Message, Receive, Scope, Send


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"echo:" + body[:16]})


def _request(
    app: Any, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None
) -> bytes:
    """Drive one request through an ASGI app; return the response body."""
    incoming: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
        "query_string": b"k=v", "headers": headers or [(b"host", b"shop")],
        "client": ("127.0.0.1", 1),
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _consume(settings: Settings, want: int, timeout: float = 30) -> list[Envelope]:
    consumer = make_consumer(settings.kafka, f"check-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([settings.topics.captured])
    out: list[Envelope] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < want and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                out.append(decode(msg.value()))
    finally:
        consumer.close()
    return out


def _with_capture(settings: Settings, **capture: Any) -> Settings:
    return Settings.load(
        env={},
        overrides={
            "kafka": {"bootstrap": settings.kafka.bootstrap},
            "topics": {"captured": settings.topics.captured},
            "capture": {"source": "it", **capture},
        },
    )


def test_captured_requests_arrive_with_session_keys(settings: Settings) -> None:
    create_topics(settings)
    cap = Capturer(_with_capture(settings, session_cookie="sid"))
    app = ShadowtapMiddleware(_echo, capturer=cap)
    for i in range(20):
        headers = [(b"host", b"shop"), (b"cookie", f"sid=user{i % 3}".encode())]
        assert _request(app, f"/orders/{i}", [b"body-%d" % i], headers) == b"echo:body-%d" % i
    assert cap.flush(10) == 0
    records = _consume(settings, 20)
    assert sorted(r.path for r in records) == sorted(f"/orders/{i}" for i in range(20))
    assert all(dict(r.headers)["cookie"] == "[redacted]" for r in records)
    assert cap.metrics.captured == 20 and not cap.metrics.dropped


def test_kafka_down_at_start_costs_the_app_nothing_and_is_counted(settings: Settings) -> None:
    down = f"127.0.0.1:{free_port()}"  # nothing listens here
    cap = Capturer(
        Settings.load(
            env={}, overrides={"kafka": {"bootstrap": down}, "capture": {"delivery_timeout_s": 1.0}}
        )
    )
    app = ShadowtapMiddleware(_echo, capturer=cap)
    for i in range(50):
        assert _request(app, "/x", [b"p%d" % i]) == b"echo:p%d" % i
    time.sleep(1.5)  # let librdkafka expire the queued records
    cap.publisher.producer.poll(0)
    remaining = cap.flush(1)
    assert cap.metrics.captured == 50
    assert cap.metrics.dropped["delivery-failed"] + remaining == 50


def test_kafka_going_down_mid_traffic_drops_and_counts_then_recovers(
    unique_name: Callable[[str], str],
) -> None:
    local = LocalKafka(unique_name("capture-down"), preferred_port=None)
    broker, _ = local.start(fresh=True)
    try:
        settings = Settings.load(
            env={},
            overrides={
                "kafka": {"bootstrap": broker.bootstrap},
                "topics": {"captured": "captured-it", "partitions": 1},
                "capture": {"delivery_timeout_s": 2.0, "queue_max_messages": 200},
            },
        )
        create_topics(settings)
        cap = Capturer(settings)
        app = ShadowtapMiddleware(_echo, capturer=cap)
        for i in range(30):
            _request(app, "/before", [b"%d" % i])
        assert cap.flush(10) == 0
        local.stop()
        for i in range(500):  # more than the bounded queue holds
            assert _request(app, "/during", [b"%d" % i]) == b"echo:%d" % i
        assert cap.metrics.dropped["queue-full"] == 300
        time.sleep(2.5)
        cap.publisher.producer.poll(0)
        assert cap.metrics.dropped["delivery-failed"] == 200

        port = int(broker.bootstrap.rsplit(":", 1)[1])
        restarted, _ = LocalKafka(local.name, preferred_port=port).start()
        assert restarted.bootstrap == broker.bootstrap
        for i in range(10):
            _request(app, "/after", [b"%d" % i])
        assert cap.flush(30) == 0
        assert cap.metrics.dropped["delivery-failed"] == 200  # nothing more was lost
        paths = [r.path for r in _consume(settings, 40)]
        assert sorted(paths) == ["/after"] * 10 + ["/before"] * 30
    finally:
        local.stop()
        import shutil

        shutil.rmtree(local.home, ignore_errors=True)


def test_fifty_megabyte_upload_keeps_memory_bounded(settings: Settings) -> None:
    create_topics(settings)
    cap = Capturer(_with_capture(settings, max_request_body=64 * 1024))
    received = 0

    async def counts(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal received
        while True:
            message = await receive()
            received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    chunk = b"m" * (1024 * 1024)
    app = ShadowtapMiddleware(counts, capturer=cap)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert _request(app, "/upload", [chunk] * 50) == b"ok"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == 50 * len(chunk)
    # The app's chunk exists anyway (one object, sent 50 times); capture adds at most its
    # 64 KB copy and an envelope, never the 50 MB.
    assert peak < 3 * len(chunk)
    assert cap.flush(10) == 0
    (record,) = _consume(settings, 1)
    assert record.truncated and record.body == b"" and record.body_size == 50 * len(chunk)
