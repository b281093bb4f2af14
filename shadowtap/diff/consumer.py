"""``shadowtap diff run``: results of several targets paired by record id, compared, counted.

A librdkafka consumer reads ``topics.results`` (every partition, assigned, no group: a run
is a batch over a time window, or follows the topic until stopped) and hands each result to
the diff's step (shadowtap.diff.stage: decode, pair by record id on capture time with a
grace period, compare). Mismatches it samples are written to ``topics.diffs``, keyed by
record id (:func:`write_mismatches`). One process pairs every partition in memory: to
spread the work over processes, run the Faust agent instead (``shadowtap diff serve``,
shadowtap.diff.worker)::

    consumer = DiffConsumer(settings, DiffRun(rules, Roles("v1-a", "v2", "v1-b")),
                            targets=("v1-a", "v1-b", "v2"), grace_ms=60_000)
    consumer.run(since_ms=None, idle_s=10, stop=event)     # reads, pairs, compares
    summary = consumer.summary(goals=["mismatch<=0.5%"])

Metrics (``metrics_port``): shadowtap.diff.stage.DiffMetrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import TopicPartition

from shadowtap.config import Settings
from shadowtap.diff.run import DiffRun, Mismatch
from shadowtap.diff.stage import DiffMetrics, DiffStage, mismatch_record, secret_headers
from shadowtap.errors import BrokerError
from shadowtap.kafka import make_consumer, make_producer, produce

log = logging.getLogger("shadowtap.diff")

_READER_GROUP = "shadowtap-diff"  # librdkafka wants one; partitions are assigned, never joined


def write_mismatches(
    producer: Any, topic: str, mismatches: Sequence[Mismatch], secret: frozenset[str]
) -> None:
    """Send sampled mismatches to ``topic`` (``topics.diffs``), keyed by record id."""
    for m in mismatches:
        produce(
            producer, topic, mismatch_record(m, secret), m.sample.id.encode(), on_delivery=_acked
        )
    producer.poll(0)


class DiffConsumer(DiffStage):
    """The diff's step over every partition of ``topics.results`` in one process."""

    def __init__(
        self,
        settings: Settings,
        run: DiffRun,
        targets: Sequence[str],
        *,
        grace_ms: int = 60_000,
        max_pending: int = 200_000,
        metrics: DiffMetrics | None = None,
        producer: Any = None,
    ) -> None:
        super().__init__(run, targets, grace_ms=grace_ms, max_pending=max_pending, metrics=metrics)
        self.settings = settings
        self.producer = producer  # None: make one when diffs are written
        self._secret = secret_headers(settings.processor.scrub_headers)

    # -- the Kafka shell ------------------------------------------------------------------

    def run(
        self,
        *,
        since_ms: int | None = None,
        idle_s: float = 10.0,
        stop: threading.Event | None = None,
        write_diffs: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Read results from ``since_ms`` (None: the beginning) until no new one came for
        ``idle_s`` seconds (0: until ``stop`` is set), then give up what is still waiting."""
        topic = self.settings.topics.results
        consumer = make_consumer(
            self.settings.kafka,
            _READER_GROUP,
            {"enable.auto.commit": False, "auto.offset.reset": "earliest"},
        )
        if write_diffs and self.producer is None:
            self.producer = make_producer(self.settings.kafka, {"linger.ms": 50})
        try:
            consumer.assign(_starts(consumer, topic, since_ms))
            last = time.monotonic()
            while not (stop is not None and stop.is_set()):
                messages = consumer.consume(500, 0.2)
                if not messages:
                    if idle_s and time.monotonic() - last > idle_s:
                        break
                    continue
                last = time.monotonic()
                for msg in messages:
                    err = msg.error()
                    if err is not None:
                        if err.code() != RdKafkaError._PARTITION_EOF:
                            log.warning("reading %s: %s", topic, err)
                        continue
                    self._write(self.offer(msg.value() or b""), write_diffs)
                if progress is not None:
                    progress(self.read)
            self._write(self.finish(), write_diffs)
        finally:
            consumer.close()
            if self.producer is not None:
                self.producer.flush(30)

    def _write(self, mismatches: list[Mismatch], write_diffs: bool) -> None:
        if write_diffs and mismatches:
            write_mismatches(self.producer, self.settings.topics.diffs, mismatches, self._secret)


def _acked(err: Any, _msg: Any) -> None:
    if err is not None:
        log.warning("a mismatch sample was not written: %s", err)


def _starts(consumer: Any, topic: str, since_ms: int | None) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=15)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise BrokerError(f"topic {topic} does not exist: create it with shadowtap topics create")
    partitions = sorted(found.partitions)
    if since_ms is None:
        return [TopicPartition(topic, p, -2) for p in partitions]  # OFFSET_BEGINNING
    wanted = [TopicPartition(topic, p, since_ms) for p in partitions]
    return list(consumer.offsets_for_times(wanted, 15))
