"""Publisher metrics: counters, the user's hook, and Prometheus export."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from shadowtap.producers.publisher import CaptureMetrics, RateLimitedLog

from .conftest import Recorder


def test_hook_sees_every_event_and_its_failures_are_contained() -> None:
    events: list[tuple[str, str, int]] = []
    metrics = CaptureMetrics(lambda *event: events.append(event))
    metrics.count_captured(100)
    metrics.count_dropped("queue-full")
    assert events == [("captured", "", 1), ("bytes", "", 100), ("dropped", "queue-full", 1)]

    def broken(*_: object) -> None:
        raise RuntimeError("user bug")

    CaptureMetrics(broken).count_captured(1)  # does not raise


def test_prometheus_export_reads_the_live_counters() -> None:
    recorder = Recorder(capacity=1)
    registry = CollectorRegistry()
    recorder.capturer.metrics.register_prometheus(registry, source="shop")
    publisher = recorder.capturer.publisher
    publisher.publish(b"a", None, None)
    publisher.publish(b"b", None, None)
    text = generate_latest(registry).decode()
    assert 'shadowtap_capture_records_total{source="shop"} 1.0' in text
    assert 'shadowtap_capture_dropped_total{reason="queue-full",source="shop"} 1.0' in text
    assert 'shadowtap_capture_queue_depth{source="shop"} 1.0' in text  # still queued


def test_rate_limited_log_says_how_many_were_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(3600)
    with caplog.at_level(logging.WARNING, logger="shadowtap.capture"):
        for _ in range(5):
            log.warning("queue full")
    assert [r.getMessage() for r in caplog.records] == ["queue full"]
    log._last = float("-inf")  # the interval has passed
    with caplog.at_level(logging.WARNING, logger="shadowtap.capture"):
        log.warning("queue full")
    assert caplog.records[-1].getMessage() == "queue full (4 similar suppressed)"


def test_librdkafka_lines_are_rate_limited_too(caplog: pytest.LogCaptureFixture) -> None:
    # librdkafka calls logger.log(level, fmt, facility, client, text) on every failed connect.
    log = RateLimitedLog(3600, logging.getLogger("shadowtap.librdkafka"))
    with caplog.at_level(logging.ERROR, logger="shadowtap.librdkafka"):
        for _ in range(3):
            log.log(logging.ERROR, "%s [%s] %s", "FAIL", "rdkafka#producer-1", "refused")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("shadowtap.librdkafka", logging.ERROR, "FAIL [rdkafka#producer-1] refused")
    ]


def test_a_refusal_below_the_message_limit_marks_the_queue_full() -> None:
    # librdkafka's byte limit binds first: it refuses at 2 queued records, far below 100,000.
    recorder = Recorder(capacity=2)
    publisher = recorder.capturer.publisher
    assert publisher.publish(b"a", None, None) and publisher.publish(b"b", None, None)
    assert not publisher.full()
    assert not publisher.publish(b"c", None, None)
    assert publisher.full()  # from now on requests are dropped before any copying
    recorder.producer.records.pop()  # one delivered
    assert not publisher.full()
    assert publisher.publish(b"d", None, None)
