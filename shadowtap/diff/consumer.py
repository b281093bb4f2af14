"""``shadowtap diff run``: results of several targets paired by record id, compared, counted.

A librdkafka consumer reads ``topics.results`` (every partition, assigned, no group: a run
is a batch over a time window, or follows the topic until stopped), decodes each result
(shadowtap.diff.sides), pairs results by record id on capture time with a grace period
(shadowtap.diff.pairing: a record is unpaired only once the slowest target has moved past it
by ``grace_ms``; the first result per record and target wins, later ones count as
redeliveries) and feeds complete and given-up records to a :class:`DiffRun`. Mismatches it
samples (at most ``Limits.samples`` per endpoint and field and view) are written to
``topics.diffs``, keyed by record id, their values from results that were scrubbed already
(production's by the processor, targets' by the replayer), and with no value of a header
that is scrubbed as a secret (``processor.scrub_headers``). A result that cannot be read is
counted and logged, never compared.

The issue asked for a Faust agent with a windowed table. This is a plain consumer around the
pure pairing instead: results of one record share a partition (they are keyed by its id),
so one process over all partitions pairs them without a changelog topic; more consumers
would need Faust's table (or a partitioned run) and are not offered yet::

    consumer = DiffConsumer(settings, DiffRun(rules, Roles("v1-a", "v2", "v1-b")),
                            targets=("v1-a", "v1-b", "v2"), grace_ms=60_000)
    consumer.run(since_ms=None, idle_s=10, stop=event)     # reads, pairs, compares
    summary = consumer.summary(goals=["mismatch<=0.5%"])

Metrics (``metrics_port``): ``shadowtap_diff_results_total{target}``,
``shadowtap_diff_redeliveries_total{target}``, ``shadowtap_diff_records_total{outcome}``
(paired, unpaired), ``shadowtap_diff_bad_results_total``, ``shadowtap_diff_mismatches_total
{view}`` (samples written), ``shadowtap_diff_pending`` (records waiting for a target).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import TopicPartition

from shadowtap import results
from shadowtap.config import Settings
from shadowtap.diff.model import Record
from shadowtap.diff.pairing import Pairing
from shadowtap.diff.run import DiffRun, Mismatch
from shadowtap.diff.sides import answer
from shadowtap.diff.summary import Summary
from shadowtap.errors import BrokerError, EnvelopeError
from shadowtap.kafka import make_consumer, make_producer, produce

log = logging.getLogger("shadowtap.diff")

VERSION = 1
_READER_GROUP = "shadowtap-diff"  # librdkafka wants one; partitions are assigned, never joined


class DiffMetrics:
    """The diff consumer's series in their own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = r = CollectorRegistry()
        self.results = Counter("shadowtap_diff_results", "Results read", ["target"], registry=r)
        self.redeliveries = Counter(
            "shadowtap_diff_redeliveries",
            "Results after the first for a record and target",
            ["target"],
            registry=r,
        )
        self.records = Counter(
            "shadowtap_diff_records", "Records compared", ["outcome"], registry=r
        )
        self.bad = Counter("shadowtap_diff_bad_results", "Results not readable", registry=r)
        self.mismatches = Counter(
            "shadowtap_diff_mismatches", "Mismatch samples written", ["view"], registry=r
        )
        self.pending = Gauge(
            "shadowtap_diff_pending", "Records waiting for a target's result", registry=r
        )

    def serve(self, port: int) -> None:
        from prometheus_client import start_http_server

        start_http_server(port, registry=self.registry)


def mismatch_record(mismatch: Mismatch, secret_headers: frozenset[str] = frozenset()) -> bytes:
    """The value written to ``topics.diffs`` for one sampled mismatch."""
    sample = mismatch.sample
    secret = mismatch.field.startswith("header:") and mismatch.field[7:] in secret_headers
    return orjson.dumps(
        {
            "v": VERSION,
            "view": mismatch.view,
            "endpoint": mismatch.endpoint,
            "field": mismatch.field,
            "id": sample.id,
            "method": sample.method,
            "path": sample.path,
            "where": sample.where,
            "kind": sample.kind,
            "a": None if secret else sample.a,
            "b": None if secret else sample.b,
            "noise": sample.noise,
        },
        default=str,
    )


class DiffConsumer:
    """Pairs results and feeds a DiffRun; ``offer`` is the pure step the loop repeats."""

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
        self.settings = settings
        self.diff_run = run
        self.pairing = Pairing(targets, grace_ms=grace_ms, max_pending=max_pending)
        self.metrics = metrics
        self.producer = producer  # None: make one when diffs are written
        self.bad = 0
        self.read = 0
        self._secret_headers = frozenset(h.lower() for h in settings.processor.scrub_headers)
        self._m_results: dict[str, Any] = {}

    def offer(self, value: bytes) -> list[Mismatch]:
        """One result record: paired, and any record it completes (or that the slowest
        target has passed by the grace period) compared."""
        self.read += 1
        try:
            result = results.decode(value)
        except EnvelopeError as exc:
            self.bad += 1
            if self.metrics is not None:
                self.metrics.bad.inc()
            log.warning("skipping a result that cannot be read: %s", exc)
            return []
        got = answer(result)
        if self.metrics is not None:
            self._result_counter(got.target).inc()
        before = self.pairing.redeliveries[got.target]
        done = self.pairing.offer(got.request, got.target, got.side, got.production)
        if self.metrics is not None and self.pairing.redeliveries[got.target] > before:
            self.metrics.redeliveries.labels(got.target).inc()
        return self._compare(done) + self._compare(self.pairing.expire())

    def finish(self) -> list[Mismatch]:
        """The end of a run: every record still waiting is given up as unpaired."""
        return self._compare(self.pairing.flush())

    def summary(self, goals: Sequence[Any] = ()) -> Summary:
        return self.diff_run.summary(goals=goals, redeliveries=dict(self.pairing.redeliveries))

    def _compare(self, records: list[Record]) -> list[Mismatch]:
        out: list[Mismatch] = []
        for record in records:
            out.extend(self.diff_run.add(record))
            if self.metrics is not None:
                paired = all(t in record.sides for t in self.pairing.targets)
                self.metrics.records.labels("paired" if paired else "unpaired").inc()
        if self.metrics is not None:
            self.metrics.pending.set(self.pairing.pending)
            for m in out:
                self.metrics.mismatches.labels(m.view).inc()
        return out

    def _result_counter(self, target: str) -> Any:
        counter = self._m_results.get(target)
        if counter is None and self.metrics is not None:
            counter = self._m_results[target] = self.metrics.results.labels(target)
        return counter

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
        if not write_diffs or not mismatches:
            return
        topic = self.settings.topics.diffs
        for m in mismatches:
            value = mismatch_record(m, self._secret_headers)
            produce(self.producer, topic, value, m.sample.id.encode(), on_delivery=_acked)
        self.producer.poll(0)


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
