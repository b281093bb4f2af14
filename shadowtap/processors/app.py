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
(``batch_size`` or ``batch_within_s``); a batch's output and its dedup changelog writes go out
through librdkafka as each record is processed (shadowtap.processors.output), the batch waits
until the broker acknowledged all of them, and only then are its events acked, so an offset
is committed only after its record is in its output topic (at-least-once). The
committed offsets come from shadowtap.processors.offsets, not from Faust's own reckoning,
which can step over a record its fetcher skipped during a rebalance; such records are read
back and processed. A batch the broker refuses is logged, counted
(``shadowtap_processor_send_failures_total``) and read again from the committed offset.
Before a rebalance (every one revokes every partition: aiokafka has no cooperative protocol)
the batches in flight are finished and committed, so only what was unfinished at that moment
is processed twice; if the group refuses that commit (the worker's session was lost while the
broker was away), a partition assigned back resumes from it all the same. Every use of
Faust's internals is in shadowtap.processors.faust_internals, which refuses untested versions
of faust-streaming, aiokafka and mode at import.
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
  ``scrub_nlp_model``, ``scrub_cache_size`` (shadowtap.processors.scrub); ``scrub_processes``
  — scrub in that many processes beside the worker's (0, the default: in it), for a worker
  with more than one core (shadowtap.processors.parallel);
- routing: ``routes`` (shadowtap.processors.routing).

Topics and the broker come from ``[topics]`` and ``[kafka]``; missing topics are created at
start. What the worker writes goes through librdkafka, ``kafka.librdkafka`` tuning properties
included; Faust reads through aiokafka. Both get the same ``[kafka]`` security (TLS, SASL
PLAIN/SCRAM, mTLS; shadowtap.kafka.Security), and ``shadowtap process`` tries it with both
clients before it starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
import time
from datetime import timedelta
from typing import Any

from shadowtap.config import Settings
from shadowtap.processors import faust_internals
from shadowtap.processors.metrics import Metrics
from shadowtap.processors.offsets import HoleReader, Record, Watermarks
from shadowtap.processors.output import Batch, Output
from shadowtap.processors.parallel import Item, ScrubPool
from shadowtap.processors.pipeline import Outcome, Pipeline, dlq_headers

log = logging.getLogger(__name__)

_CHUNK = 50  # records per hand-over to a scrubber process: ~1 % of the work in pickling


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


def build_app(
    settings: Settings,
    datadir: str,
    metrics: Metrics | None = None,
    scrubbers: ScrubPool | None = None,
) -> Any:
    """The Faust app with its one agent; nothing runs until a Worker starts it.

    ``datadir`` is Faust's data directory: the memory store writes nothing there, but Faust
    makes ``v1/tables`` in it (by default ``<group>-data`` in the working directory).
    """
    import faust

    from shadowtap.kafka_security import Security

    p = settings.processor
    topics = settings.topics
    metrics = metrics or Metrics()
    compression = settings.kafka.compression
    app = faust.App(
        p.group,
        datadir=datadir,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka.bootstrap.split(",") if h.strip()],
        **Security.of(settings.kafka).faust(),  # broker_credentials: TLS, SASL
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
    changelog = table.table.changelog_topic.get_topic_name()
    agent = Agent(
        settings, app, pipeline=pipeline, metrics=metrics, changelog=changelog, scrubbers=scrubbers
    )

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, /, *args: Any, signal: Any, **__: Any) -> None:
        await agent.on_partitions_revoked(args[0])  # Faust sends the set of revoked TPs

    @app.agent(source)
    async def process(stream: Any) -> None:
        await agent.run(stream)

    return app


class Agent:
    """The body of the Faust agent: records in batches, output acknowledged before acks.

    Events are acked by hand only after their output (and their dedup changelog writes) is
    acknowledged by the broker, and the offsets Faust commits come from
    shadowtap.processors.offsets, which never moves past a record that was not finished.
    Records Faust skipped are read back here. A full batch is finished in the background
    (its scrubbers' outcomes sent, its output batch awaited) while the next one fills. A
    batch the broker refuses, or whose scrubber died, is not retried in place: its
    partitions start over from the group's committed offset, so the next record of each
    finds the batch as a hole and reads it back.
    """

    def __init__(
        self,
        settings: Settings,
        app: Any,
        *,
        pipeline: Pipeline,
        metrics: Metrics,
        changelog: str | None = None,
        output: Any = None,
        scrubbers: ScrubPool | None = None,
    ) -> None:
        self.settings = settings
        self.app = app
        self.pipeline = pipeline
        self.metrics = metrics
        self.watermarks = Watermarks()
        self._manual: Any = None  # the stream the agent reads (acks go to it)
        # Positions finished here whose commit the group refused at a rebalance (the session
        # was lost): a partition assigned back starts from there, not from the group's offset.
        self._refused: dict[tuple[str, int], int] = {}
        # Made on first use and kept for the process: Faust restarts a crashed agent, and a
        # read cancelled with it may still be running in its thread.
        self._holes: HoleReader | None = None
        # librdkafka, made on first use (it needs the running loop) and kept for the process.
        self.output: Output | None = output
        self._changelog = changelog  # the dedup table's changelog topic
        self.scrubbers = scrubbers  # None: the whole pipeline runs here
        self._batch: list[tuple[Record, Any]] = []  # records and their Faust events (or None)
        # With scrubbers: records past dedup waiting to fill a chunk, and this batch's chunks
        self._chunk: list[tuple[Record, Item]] = []
        self._chunks: list[tuple[list[Record], asyncio.Future[list[Outcome]]]] = []
        self._scrubbers_ready = False
        self._diverted = False
        self._opened = 0.0
        self._lock = asyncio.Lock()
        self._closing: asyncio.Future[None] | None = None  # the batch waiting for its acks

    async def run(self, stream: Any) -> None:
        faust_internals.commit_watermarks(
            self.app.consumer, lambda topic, partition: self.watermarks.position((topic, partition))
        )
        if self.output is None:
            self.output = Output(self.settings.kafka, asyncio.get_running_loop())
        self._divert_table_writes()
        if self.scrubbers is not None and not self._scrubbers_ready:
            await self.scrubbers.ready()
            self._scrubbers_ready = True
        p = self.settings.processor
        manual = self._manual = stream.noack()
        ticker = asyncio.ensure_future(self._tick(manual))
        try:
            async for event in manual.events():
                m = event.message
                record = Record(m.topic, m.partition, m.offset, m.key, event.value)
                await self._read_holes(record, manual)
                if self.watermarks.finished((m.topic, m.partition), m.offset):
                    await manual.ack(event)  # finished before a rebalance: not again
                    continue
                self._add(record, event)
                if len(self._batch) >= p.batch_size:
                    await self._close(manual)
        finally:
            ticker.cancel()
            if self._closing is not None:
                self._closing.cancel()

    def _divert_table_writes(self) -> None:
        """Send the dedup table's changelog writes through ``output``, in the current batch.

        Faust would send them through aiokafka, acknowledged by nothing a batch could wait
        for; taken from its producer buffer, a batch's writes are acknowledged with its output.
        """
        if self.pipeline.seen is None or self._diverted or self._changelog is None:
            return

        def send(topic: str, *message: Any, partition: int | None) -> None:
            assert self.output is not None
            self.output.send(topic, *message, partition=partition)

        faust_internals.divert_table_writes(self.app.producer, self._changelog, send)
        self._diverted = True

    def _add(self, record: Record, event: Any) -> None:
        if not self._batch:
            self._opened = time.monotonic()
        self._batch.append((record, event))
        if self.scrubbers is None:
            self._settle(record, self.pipeline.process(record.value, record.key))
            return
        started = self.pipeline.front(record.value, record.key)
        if isinstance(started, Outcome):
            self._settle(record, started)
            return
        env, timings = started
        assert record.value is not None  # it decoded
        self._chunk.append((record, (record.value, env.meta, timings)))
        if len(self._chunk) >= _CHUNK:
            self._submit_chunk()

    def _settle(self, record: Record, outcome: Outcome, batch: Batch | None = None) -> None:
        self.metrics.record(outcome)
        if outcome.kind != "drop":
            self._send(record, outcome, batch)

    def _submit_chunk(self) -> None:
        assert self.scrubbers is not None
        work = self.scrubbers.scrub([item for _, item in self._chunk])
        self._chunks.append(([r for r, _ in self._chunk], asyncio.ensure_future(work)))
        self._chunk = []

    async def _settle_chunks(self, chunks: list[tuple[list[Record], Any]], batch: Batch) -> None:
        """Send what the scrubbers made of a batch's chunks, in order, into its output batch."""
        for records, work in chunks:
            for record, outcome in zip(records, await work, strict=True):
                self._settle(record, outcome, batch)

    async def _read_holes(self, record: Record, manual: Any) -> None:
        """Process first any records of this partition that Faust skipped.

        A long hole (after a failed batch, say) is read a batch at a time, each sent on
        before the next is read, so memory stays bounded.
        """
        tp = (record.topic, record.partition)
        if self._holes is None:
            self._holes = await asyncio.to_thread(HoleReader, self.settings, self.app.conf.id)
        if not self.watermarks.knows(tp):
            committed = await asyncio.to_thread(self._holes.committed, tp)
            self.watermarks.start(tp, max(committed, self._refused.pop(tp, committed)))
        hole = self.watermarks.see(tp, record.offset)
        if hole is None:
            return
        self.metrics.holes.inc(hole[1] - hole[0])
        lo, hi = hole
        total = 0
        step = max(self.settings.processor.batch_size, 100)
        while lo < hi:
            end = min(hi, lo + step)
            found, covered = await asyncio.to_thread(self._holes.read, tp, lo, end)
            total += len(found)
            for missing in found:
                self._add(missing, None)
            read = {r.offset for r in found}
            for gone in range(lo, covered):  # deleted by retention meanwhile
                if gone not in read:
                    self.watermarks.finish(tp, gone)
            if covered < end:
                # The read timed out: this partition starts over from its committed offset
                # (the rest comes back as a hole with its next record).
                log.warning("%s[%d]: offsets %d..%d not read back in time", *tp, covered, hi - 1)
                self.watermarks.forget(tp)
                break
            lo = end
            if len(self._batch) >= self.settings.processor.batch_size:
                await self._flush(manual)
                if not self.watermarks.knows(tp):
                    break  # that batch failed: the partition starts over anyway
        log.warning(
            "%s[%d]: offsets %d..%d were not delivered by Faust; read back %d",
            *tp,
            hole[0],
            hole[1] - 1,
            total,
        )

    async def _flush(self, manual: Any) -> None:
        """Close the batch and wait until it is acknowledged (or starts over)."""
        await self._close(manual)
        if self._closing is not None:
            await asyncio.wait([self._closing])

    async def _close(self, manual: Any) -> None:
        """Close the batch: it is finished in the background while the next one fills.

        One batch at most waits for its scrubbers and acks: the one before it must be done,
        so batches finish in order.
        """
        async with self._lock:
            if self._closing is not None:
                await asyncio.wait([self._closing])  # it never raises but when cancelled
                self._closing = None
            if not self._batch:
                return
            items, self._batch = self._batch, []
            if self._chunk:
                self._submit_chunk()
            chunks, self._chunks = self._chunks, []
            # Its own output batch from here on: a batch that fails takes nothing of the
            # next one's with it (which would then be acked without its messages).
            assert self.output is not None
            out = self.output.cut()
            self._closing = asyncio.ensure_future(self._finish(items, chunks, out, manual))

    async def _finish(
        self,
        items: list[tuple[Record, Any]],
        chunks: list[tuple[list[Record], asyncio.Future[list[Outcome]]]],
        out: Batch,
        manual: Any,
    ) -> None:
        """Send what the scrubbers made of the batch, wait for every ack, then ack its events."""
        try:
            await self._settle_chunks(chunks, out)
            out.seal()
            await out.done
        except Exception as exc:
            _abandon(chunks)
            self._start_over(items, exc)
            return
        except BaseException:  # cancelled: what was in flight is not known
            _abandon(chunks)
            self._start_over(items, None)
            raise
        for record, _ in items:
            self.watermarks.finish((record.topic, record.partition), record.offset)
        try:
            for _, event in items:
                if event is not None:
                    await manual.ack(event)
        except Exception:  # Faust's books only: the offsets committed are the watermarks'
            log.exception("acking a finished batch in Faust failed")

    def _start_over(self, items: list[tuple[Record, Any]], exc: Any) -> None:
        """A batch was not acknowledged: its partitions go back to their committed offsets."""
        partitions = sorted({(r.topic, r.partition) for r, _ in items})
        for tp in partitions:
            self.watermarks.forget(tp)
        if exc is not None:
            self.metrics.send_failures.inc()
            log.error(
                "a batch of %d records was not acknowledged (%r); %s will be read again "
                "from the committed offsets",
                len(items),
                exc,
                ", ".join(f"{t}[{n}]" for t, n in partitions),
            )

    def _send(self, record: Record, outcome: Outcome, batch: Batch | None = None) -> None:
        """Queue one record for its output topic or the DLQ, in ``batch`` or the current one."""
        assert self.output is not None
        if outcome.kind == "out":
            assert outcome.topic is not None
            self.output.send(outcome.topic, record.key, outcome.value, outcome.headers, batch=batch)
            return
        log.warning(
            "DLQ %s at %s[%d]@%d: %s",
            outcome.reason,
            record.topic,
            record.partition,
            record.offset,
            outcome.error[:200],
        )
        headers = dlq_headers(outcome, record.topic, record.partition, record.offset)
        value = record.value if record.value is not None else b""
        self.output.send(self.settings.topics.dlq, record.key, value, headers, batch=batch)

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Before a rebalance moves partitions: finish the batches in flight, commit them.

        aiokafka rebalances eagerly: every partition is revoked, and each starts again at the
        group's committed offset, here or on another worker. Without this, the batches in
        flight and every record finished since the last timer commit would be processed
        twice. Each wait is bounded (a broker that is gone acknowledges nothing): what is not
        finished in time is processed again. A commit the group refuses (this worker's
        session was lost: the broker was away) is kept, and a partition assigned back starts
        from it. The books then start over.
        """
        wait = max(1.0, self.settings.processor.session_timeout_s / 3)
        try:
            if self._manual is not None:
                await asyncio.wait_for(self._flush(self._manual), wait)
        except TimeoutError:
            log.warning("a rebalance gave up waiting for records in flight after %.0fs", wait)
        offsets = {}
        for tp in revoked:
            position = self.watermarks.position((tp.topic, tp.partition))
            if position is not None:
                offsets[tp] = position
        self.watermarks.reset()
        try:
            committed = await asyncio.wait_for(
                faust_internals.commit_now(self.app.consumer, offsets), wait
            )
        except TimeoutError:
            committed = False
        if offsets and not committed:
            log.warning(
                "the group did not take the commit before a rebalance: a partition assigned "
                "back resumes from it"
            )
            self._refused.update(((tp.topic, tp.partition), o) for tp, o in offsets.items())

    async def _tick(self, manual: Any) -> None:
        # A quiet stream still gets its last records acked (and their offsets committed).
        within = self.settings.processor.batch_within_s
        while True:
            await asyncio.sleep(within)
            if self._batch and time.monotonic() - self._opened >= within:
                await self._close(manual)


def _abandon(chunks: list[tuple[list[Record], asyncio.Future[Any]]]) -> None:
    """Chunks of a batch that starts over: cancelled if still running, their errors seen."""
    for _, work in chunks:
        if not work.done():
            work.cancel()
        elif not work.cancelled():
            work.exception()


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
    scrubbers = ScrubPool(settings) if settings.processor.scrub_processes else None
    try:
        with tempfile.TemporaryDirectory(prefix="shadowtap-processor-") as datadir:
            app = build_app(settings, datadir, metrics, scrubbers)
            worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
            faust_internals.quiet_worker(worker)
            try:
                worker.execute_from_commandline()
            except SystemExit as exc:
                return int(exc.code or 0) if isinstance(exc.code, int | None) else 1
    finally:
        if scrubbers is not None:
            scrubbers.close()
    return 0
