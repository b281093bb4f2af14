"""A Kafka publisher that can never slow down or break the app it runs in.

``produce()`` only enqueues into librdkafka's bounded queue and ``poll(0)`` serves delivery
reports without waiting. A full queue (``BufferError``) or a broker that is down means the
record is dropped and counted, never that the request waits. Delivery reports are asked for
failures only (``delivery.report.only.error``), so a healthy broker costs no Python callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException, Producer

from shadowtap.config import Settings
from shadowtap.kafka import LIBRDKAFKA_LOGGER, client_config
from shadowtap.kafka_check import explain

log = logging.getLogger("shadowtap.capture")

# Metric hook: called with (event, reason, amount); event is "captured", "dropped" or "bytes".
MetricHook = Callable[[str, str, int], None]


class CaptureMetrics:
    """Counters of what capture did; read by Prometheus at scrape time, or by a hook."""

    __slots__ = ("_lock", "bytes", "captured", "dropped", "hook", "queue_depth")

    def __init__(self, hook: MetricHook | None = None) -> None:
        self.captured = 0
        self.bytes = 0
        self.dropped: Counter[str] = Counter()
        self.hook = hook
        self.queue_depth: Callable[[], int] = lambda: 0
        self._lock = threading.Lock()

    def count_captured(self, size: int) -> None:
        # Plain int increments are atomic enough under the GIL for counters.
        self.captured += 1
        self.bytes += size
        if self.hook is not None:
            _call_hook(self.hook, "captured", "", 1)
            _call_hook(self.hook, "bytes", "", size)

    def count_dropped(self, reason: str, amount: int = 1) -> None:
        with self._lock:
            self.dropped[reason] += amount
        if self.hook is not None:
            _call_hook(self.hook, "dropped", reason, amount)

    def register_prometheus(self, registry: Any = None, source: str = "") -> None:
        """Expose these counters on a prometheus_client registry (imported only here)."""
        from prometheus_client import REGISTRY
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        metrics = self

        class _Collector:
            def collect(self) -> Any:
                labels = ["source"]
                captured = CounterMetricFamily(
                    "shadowtap_capture_records", "Requests captured and queued", labels=labels
                )
                captured.add_metric([source], metrics.captured)
                size = CounterMetricFamily(
                    "shadowtap_capture_bytes", "Bytes of envelopes queued", labels=labels
                )
                size.add_metric([source], metrics.bytes)
                dropped = CounterMetricFamily(
                    "shadowtap_capture_dropped",
                    "Requests not captured, by reason",
                    labels=[*labels, "reason"],
                )
                for reason, value in list(metrics.dropped.items()):
                    dropped.add_metric([source, reason], value)
                depth = GaugeMetricFamily(
                    "shadowtap_capture_queue_depth", "Records waiting for Kafka", labels=labels
                )
                depth.add_metric([source], metrics.queue_depth())
                yield from (captured, size, dropped, depth)

        (registry or REGISTRY).register(_Collector())


def _call_hook(hook: MetricHook, event: str, reason: str, amount: int) -> None:
    try:
        hook(event, reason, amount)
    except Exception:  # a user's hook must not break capture
        log.debug("capture metric hook failed", exc_info=True)


class RateLimitedLog:
    """Passes one line per interval to ``logger``, saying how many were suppressed since.

    Also the ``logger`` librdkafka is given: while Kafka is down it reports a failed connect
    several times a second, which must not flood the app's log.
    """

    __slots__ = ("_interval", "_last", "_logger", "_suppressed")

    def __init__(self, interval_s: float, logger: logging.Logger = log) -> None:
        self._interval = interval_s
        self._logger = logger
        self._last = float("-inf")
        self._suppressed = 0

    def log(
        self, level: int, message: str, *args: object, exc_info: BaseException | bool = False
    ) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        suffix = f" ({self._suppressed} similar suppressed)" if self._suppressed else ""
        self._last, self._suppressed = now, 0
        self._logger.log(level, message + suffix, *args, exc_info=exc_info)

    def warning(self, message: str, *args: object) -> None:
        self.log(logging.WARNING, message, *args)


class Publisher:
    """Non-blocking produce to one topic; drops and counts instead of waiting."""

    def __init__(
        self,
        settings: Settings,
        metrics: CaptureMetrics | None = None,
        producer: Producer | None = None,
    ) -> None:
        capture = settings.capture
        self.topic = settings.topics.captured
        self.metrics = metrics or CaptureMetrics()
        self._log = RateLimitedLog(capture.log_interval_s)
        self._flush_timeout = capture.flush_timeout_s
        self._kafka = settings.kafka
        # Queue length at which librdkafka last refused a record: its byte limit can bind
        # before the message limit, and len() counts messages only.
        self._max_queued = self._full_at = capture.queue_max_messages
        self.producer = (
            producer
            if producer is not None
            else Producer(
                client_config(
                    settings.kafka,
                    {
                        "compression.type": settings.kafka.compression,
                        "linger.ms": 20,
                        "acks": 1,
                        "queue.buffering.max.messages": capture.queue_max_messages,
                        "queue.buffering.max.kbytes": capture.queue_max_kbytes,
                        "message.timeout.ms": int(capture.delivery_timeout_s * 1000),
                        "delivery.report.only.error": True,
                        "on_delivery": self._on_delivery,
                        "error_cb": self._on_error,
                        "logger": RateLimitedLog(capture.log_interval_s, LIBRDKAFKA_LOGGER),
                    },
                )
            )
        )
        self.metrics.queue_depth = self.producer.__len__

    def full(self) -> bool:
        """The queue is at its limit (Kafka down or too slow): a record now would be dropped."""
        return len(self.producer) >= self._full_at

    def warn_full(self) -> None:
        self._log.warning("shadowtap: Kafka queue full, dropping captured requests")

    def publish(
        self,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, bytes]] | None,
        ts: int = 0,
    ) -> bool:
        """Queue one record, its Kafka timestamp ``ts`` (capture time, epoch ms; 0: now);
        False (and counted) when it had to be dropped."""
        try:
            self.producer.produce(self.topic, value, key, headers=headers, timestamp=ts)  # type: ignore[arg-type]
        except BufferError:
            self._full_at = min(self._max_queued, max(1, len(self.producer)))
            self.metrics.count_dropped("queue-full")
            self.warn_full()
            self.producer.poll(0)
            return False
        except (KafkaException, TypeError, ValueError) as exc:
            self.metrics.count_dropped("produce-error")
            self._log.warning("shadowtap: could not queue a captured request: %s", exc)
            return False
        self.producer.poll(0)
        self._full_at = self._max_queued
        self.metrics.count_captured(len(value))
        return True

    def flush(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` for queued records; return how many are still queued."""
        remaining = int(self.producer.flush(self._flush_timeout if timeout is None else timeout))
        if remaining:
            self.metrics.count_dropped("shutdown", remaining)
            log.warning("shadowtap: %d captured requests not delivered at shutdown", remaining)
        return remaining

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.metrics.count_dropped("delivery-failed")
            self._log.warning("shadowtap: captured request not delivered to Kafka: %s", err)

    def _on_error(self, err: Any) -> None:
        # A wrong password or an untrusted certificate is said as such
        # (shadowtap.kafka_check.explain).
        self._log.warning("shadowtap: Kafka client error: %s", explain(err, self._kafka) or err)
