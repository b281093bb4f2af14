"""``shadowtap process``: the Faust worker from ``shadowtap.captured`` to ``shadowtap.mirror``.

Usage::

    shadowtap process --bootstrap kafka:9092 [--config shadowtap.toml] [--web-port 6066]

    # or from Python (what the CLI and ``shadowtap demo`` run):
    from shadowtap.processors.app import run_worker
    run_worker(Settings.load(), web_port=6066, loglevel="info")   # blocks until SIGTERM/SIGINT

One agent reads the captured topic and runs decode → filter → sample → dedup → scrub →
route (shadowtap.processors.pipeline) on each record, then sends it to its output topic, or
to the DLQ with the reason in the Kafka headers (``shadowtap-dlq-reason``, …). Nothing a
record contains can crash the worker. Events are acked by hand: records are handled in batches
(``batch_size`` or ``batch_within_s``), a batch's output is sent and awaited until the broker
acknowledges it, and only then are its events acked, so an offset is committed only after
its record is in its output topic (at-least-once).
Dedup memory is a Faust windowed table (``<group>-dedup-changelog``): a restarted or
rebalanced worker recovers it from the changelog, and windows expire after
``2 × dedup_window_s``. Start more workers with the same ``group`` to scale out (each keeps the
dedup memory of its partitions: duplicates that arrive in different partitions are only caught
while one worker owns both).

Settings (``[processor]`` in TOML, ``SHADOWTAP_PROCESSOR_*`` in the environment):

- ``group`` — consumer group and Faust app id (``shadowtap-processor``);
- ``web_port`` — Prometheus ``/metrics`` port (6066; 0 turns it off); see
  shadowtap.processors.metrics;
- ``batch_size``, ``batch_within_s`` — records handled per batch (1000) and how long to wait
  to fill one (0.05); a batch's offsets move only after all its output is acknowledged;
- ``session_timeout_s`` — how long before a silent worker's partitions move (30);
- filter: ``filter_paths``, ``filter_user_agents``, ``extra_filter_paths``,
  ``extra_filter_user_agents`` (shadowtap.processors.filters);
- sampling: ``sample_percent``, ``sample_by``, ``session_header``, ``session_cookie``,
  ``sample_rules`` (shadowtap.processors.sampling);
- dedup: ``dedup_enabled``, ``dedup_window_s``, ``dedup_fields``, ``dedup_max_keys``
  (shadowtap.processors.dedup);
- scrub: ``scrub_mode``, ``scrub_key``, ``scrub_entities``, ``scrub_thresholds``,
  ``scrub_field_names``, ``scrub_headers``, ``scrub_skip_headers``, ``scrub_phone_regions``,
  ``scrub_nlp_model``, ``scrub_cache_size`` (shadowtap.processors.scrub);
- routing: ``routes`` (shadowtap.processors.routing).

Topics and the broker come from ``[topics]`` and ``[kafka]``; missing topics are created at
start. Faust talks to Kafka through aiokafka, so ``kafka.librdkafka`` properties do not apply
to it (plaintext brokers only for now).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from typing import Any

from shadowtap.config import Settings
from shadowtap.processors.metrics import Metrics
from shadowtap.processors.pipeline import Outcome, Pipeline, dlq_headers

log = logging.getLogger(__name__)


class TableSeen:
    """Dedup memory in a Faust tumbling-window table: this window and the one before."""

    def __init__(self, table: Any, window_s: float) -> None:
        self._table = table
        self._window_s = window_s
        self._window_ms = int(window_s * 1000)

    def check_and_add(self, fp: str, request_id: str, ts_ms: int) -> bool:
        windows = self._table[fp]
        for stored in _lazy(windows.current, lambda: windows.delta(self._window_s)):
            if stored:
                first_id, first_ts = stored
                if first_id == request_id:
                    return False  # the same record again: a redelivery, not a duplicate
                if ts_ms - first_ts < self._window_ms:
                    return True
        self._table[fp] = [request_id, ts_ms]
        return False


def _lazy(*lookups: Any) -> Any:
    # The previous window is read only when the current one has nothing: lookups are costly.
    for lookup in lookups:
        yield lookup()


def build_app(settings: Settings, metrics: Metrics | None = None) -> Any:
    """The Faust app with its one agent; nothing runs until a Worker starts it."""
    import faust

    p = settings.processor
    topics = settings.topics
    metrics = metrics or Metrics()
    compression = settings.kafka.compression
    app = faust.App(
        p.group,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka.bootstrap.split(",") if h.strip()],
        store="memory://",
        web_enabled=False,
        topic_partitions=topics.partitions,
        topic_replication_factor=topics.replication_factor,
        producer_compression_type=None if compression == "none" else compression,
        producer_acks=-1,
        producer_linger_ms=5,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.5,
        broker_max_poll_records=p.batch_size,
        # a crashed worker's partitions move to the others after this long
        broker_session_timeout=p.session_timeout_s,
        broker_heartbeat_interval=max(0.5, p.session_timeout_s / 6),
        table_cleanup_interval=max(1.0, p.dedup_window_s / 2),
        stream_wait_empty=False,
        # the dedup table's changelog keys are (fingerprint, window) pairs: JSON, not raw
        key_serializer="json",
        value_serializer="json",
    )
    table = app.Table(
        "dedup",
        default=lambda: None,
        partitions=topics.partitions,
    ).tumbling(timedelta(seconds=p.dedup_window_s), expires=timedelta(seconds=2 * p.dedup_window_s))
    pipeline = Pipeline(settings, TableSeen(table, p.dedup_window_s) if p.dedup_enabled else None)
    if not p.dedup_enabled:
        pipeline.seen = None
    source = app.topic(topics.captured, value_serializer="raw", key_serializer="raw")
    outputs = {
        name: app.topic(name, value_serializer="raw", key_serializer="raw")
        for name in pipeline.router.topics
    }
    dlq = app.topic(topics.dlq, value_serializer="raw", key_serializer="raw")

    @app.agent(source)
    async def process(stream: Any) -> None:
        # Manual acks: an event is acked only after its output is acknowledged by the broker.
        # (Faust's take()/take_events() ack a batch in a ``finally``, even when the batch was
        # cancelled half-way by a rebalance: that commits offsets of records never sent.)
        manual = stream.noack()
        loop = asyncio.get_running_loop()
        batch: list[tuple[Any, Outcome | None]] = []
        lock = asyncio.Lock()
        opened = [0.0]

        async def flush() -> None:
            async with lock:
                if not batch:
                    return
                items = batch[:]
                batch.clear()
                # Dedup memory first: once a record is in its output, the changelog must
                # already say it was seen, or after a crash a later copy could pass and the
                # original be dropped.
                # (Faust's flush gives up on its send buffer after 0.1 s without progress, so
                # this is best effort; looping until the buffer is empty stalled the worker.)
                if pipeline.seen is not None:
                    await app.producer.flush()
                pending = [await _send(e, o, outputs, dlq) for e, o in items if o is not None]
                if pending:
                    await asyncio.gather(*pending)
                for event, _ in items:
                    await manual.ack(event)

        async def tick() -> None:
            # A quiet stream still gets its last records acked (and their offsets committed).
            while True:
                await asyncio.sleep(p.batch_within_s)
                if batch and loop.time() - opened[0] >= p.batch_within_s:
                    await flush()

        ticker = asyncio.ensure_future(tick())
        try:
            async for event in manual.events():
                outcome = pipeline.process(event.value, event.message.key)
                metrics.record(outcome)
                if not batch:
                    opened[0] = loop.time()
                batch.append((event, None if outcome.kind == "drop" else outcome))
                if len(batch) >= p.batch_size:
                    await flush()
        finally:
            ticker.cancel()

    return app


async def _send(event: Any, outcome: Outcome, outputs: dict[str, Any], dlq: Any) -> Any:
    """Send one record to its output topic or the DLQ; the future resolves on broker ack."""
    message = event.message
    # force=True: publish now instead of attaching to the offset commit, so the batch can
    # wait for the broker's acknowledgement itself.
    if outcome.kind == "out":
        assert outcome.topic is not None
        return await outputs[outcome.topic].send(
            key=message.key, value=outcome.value, headers=outcome.headers, force=True
        )
    log.warning(
        "DLQ %s at %s[%d]@%d: %s",
        outcome.reason,
        message.topic,
        message.partition,
        message.offset,
        outcome.error[:200],
    )
    return await dlq.send(
        key=message.key,
        value=event.value if event.value is not None else b"",
        headers=dlq_headers(outcome, message.topic, message.partition, message.offset),
        force=True,
    )


def _create_extra_topics(settings: Settings, names: list[str]) -> None:
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    from shadowtap.kafka import make_admin

    t = settings.topics
    admin = make_admin(settings.kafka)
    retention = str(int(t.mirror_retention_hours * 3_600_000))
    futures = admin.create_topics(
        [
            NewTopic(n, t.partitions, t.replication_factor, config={"retention.ms": retention})
            for n in names
        ]
    )
    for name, future in futures.items():
        try:
            future.result(30)
        except Exception as exc:  # already exists is fine; anything else is logged
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                log.warning("could not create route topic %s: %s", name, exc)


def _with_captured_partitions(settings: Settings) -> Settings:
    """Settings whose partition count is the captured topic's own, as found on the cluster.

    Faust co-partitions the dedup table's changelog with its source and refuses records from
    a topic whose count differs, so a topic created elsewhere (by hand, by an older config)
    must set the count, not ``topics.partitions``.
    """
    from shadowtap.kafka import partition_count

    found = partition_count(settings.kafka, settings.topics.captured)
    if found is None or found == settings.topics.partitions:
        return settings
    log.info(
        "%s has %d partitions (topics.partitions says %d): using %d",
        settings.topics.captured,
        found,
        settings.topics.partitions,
        found,
    )
    return dataclasses.replace(
        settings, topics=dataclasses.replace(settings.topics, partitions=found)
    )


def run_worker(settings: Settings, *, web_port: int | None = None, loglevel: str = "info") -> int:
    """Run the processor until SIGINT/SIGTERM; return the exit code."""
    import faust

    from shadowtap.kafka import create_topics

    # Before the consumer subscribes, so it sees every partition; Faust creates only its own.
    create_topics(settings)
    settings = _with_captured_partitions(settings)
    routed = sorted(
        {r.topic for r in settings.processor.routes if r.topic} - {settings.topics.mirror}
    )
    if routed:
        _create_extra_topics(settings, routed)
    metrics = Metrics()
    port = settings.processor.web_port if web_port is None else web_port
    metrics.serve(port)
    app = build_app(settings, metrics)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int | None) else 1
    return 0
