"""``shadowtap process``: the Faust worker from ``shadowtap.captured`` to ``shadowtap.mirror``.

Usage::

    shadowtap process --bootstrap kafka:9092 [--config shadowtap.toml] [--web-port 6066]

    # or from Python (what the CLI and ``shadowtap demo`` run):
    from shadowtap.processors.app import run_worker
    run_worker(Settings.load(), loglevel="info")   # blocks until SIGTERM/SIGINT

One agent reads the captured topic and runs decode → filter → sample → dedup → scrub →
route (shadowtap.processors.pipeline) on each record, then sends it to its output topic, or
to the DLQ with the reason in the Kafka headers (``shadowtap-dlq-reason``, …). Nothing a
record contains can crash the worker. Events are acked by hand: records are handled in batches
(``batch_size`` or ``batch_within_s``); a batch's output and its dedup changelog writes go out
through librdkafka as each record is processed (shadowtap.processors.output), the batch waits
until the broker acknowledged all of them, and only then are its events acked, so an offset
is committed only after its record is in its output topic (at-least-once;
shadowtap.processors.batches). The committed offsets come from shadowtap.processors.offsets,
not from Faust's own reckoning, which can step over a record its fetcher skipped during a
rebalance; such records are read back and processed (shadowtap.processors.holes). A batch the
broker refuses is logged, counted (``shadowtap_processor_send_failures_total``) and read again
from the committed offset. Before a rebalance (every one revokes every partition: aiokafka has
no cooperative protocol) the batches in flight are finished and committed, so only what was
unfinished at that moment is processed twice; if the group refuses that commit (the worker's
session was lost while the broker was away), a partition assigned back resumes from it all the
same.

This module is the Faust shell: the app, its table and its agent, which hands each event to
shadowtap.processors.agent (no Faust there) and acks what it finishes. Every use of Faust's
internals is in shadowtap.faust_internals, which refuses untested versions of
faust-streaming, aiokafka and mode at import.

Dedup memory is a Faust windowed table (``<group>-dedup-changelog``): a restarted or
rebalanced worker recovers it from the changelog, and windows expire after
``2 × dedup_window_s``. Start more workers with the same ``group`` to scale out (each keeps the
dedup memory of its partitions: duplicates that arrive in different partitions are only caught
while one worker owns both).

Settings (``[processor]`` in TOML, ``SHADOWTAP_PROCESSOR_*`` in the environment):

- ``group`` — consumer group and Faust app id (``shadowtap-processor``);
- ``web_port`` — Prometheus ``/metrics`` port (6066; 0 turns it off; ``--web-port``); see
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
  ``scrub_nlp_model``, ``scrub_cache_size`` (shadowtap.scrub); ``scrub_processes``
  — scrub in that many processes beside the worker's (0, the default: in it), for a worker
  with more than one core (shadowtap.processors.parallel);
- routing: ``routes`` (shadowtap.processors.routing).

Topics and the broker come from ``[topics]`` and ``[kafka]``; missing topics are created at
start. What the worker writes goes through librdkafka, ``kafka.librdkafka`` tuning properties
included; Faust reads through aiokafka. Both get the same ``[kafka]`` security (TLS, SASL
PLAIN/SCRAM, mTLS; shadowtap.kafka_security.Security), and ``shadowtap process`` tries it
with both clients before it starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
from datetime import timedelta
from typing import Any

from shadowtap import faust_internals
from shadowtap.config import Settings
from shadowtap.errors import BrokerError
from shadowtap.faustapp import app_options, run_app
from shadowtap.processors.agent import Agent
from shadowtap.processors.metrics import Metrics
from shadowtap.processors.offsets import Record
from shadowtap.processors.output import Output
from shadowtap.processors.parallel import ScrubPool
from shadowtap.processors.pipeline import Pipeline

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

    p = settings.processor
    topics = settings.topics
    metrics = metrics or Metrics()
    app = faust.App(
        p.group,
        datadir=datadir,
        **app_options(settings, topics.partitions),
        producer_linger_ms=5,
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
    agent = FaustAgent(
        app,
        Agent(settings, pipeline=pipeline, metrics=metrics, scrubbers=scrubbers),
        changelog=changelog,
    )

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, /, *args: Any, signal: Any, **__: Any) -> None:
        await agent.on_partitions_revoked(args[0])  # Faust sends the set of revoked TPs

    @app.agent(source)
    async def process(stream: Any) -> None:
        await agent.run(stream)

    return app


class FaustAgent:
    """The Faust side of the agent: events in, acks out, commits and table writes routed.

    Events are acked by hand only after their output (and their dedup changelog writes) is
    acknowledged by the broker (shadowtap.processors.agent does the rest), and the offsets
    Faust commits are the agent's watermarks, which never move past a record that was not
    finished.
    """

    def __init__(self, app: Any, agent: Agent, changelog: str | None = None) -> None:
        self.app = app
        self.agent = agent
        self._changelog = changelog  # the dedup table's changelog topic
        self._diverted = False

    async def run(self, stream: Any) -> None:
        agent = self.agent
        watermarks = agent.watermarks
        faust_internals.commit_watermarks(
            self.app.consumer, lambda topic, partition: watermarks.position((topic, partition))
        )
        if agent.batches.output is None:
            agent.batches.output = Output(agent.settings.kafka, asyncio.get_running_loop())
        self._divert_table_writes()
        await agent.ready()
        manual = stream.noack()
        agent.batches.ack = manual.ack
        ticker = asyncio.ensure_future(agent.batches.tick())
        try:
            async for event in manual.events():
                m = event.message
                await agent.take(Record(m.topic, m.partition, m.offset, m.key, event.value), event)
        finally:
            ticker.cancel()
            agent.batches.cancel()

    def _divert_table_writes(self) -> None:
        """Send the dedup table's changelog writes through the output, in the current batch.

        Faust would send them through aiokafka, acknowledged by nothing a batch could wait
        for; taken from its producer buffer, a batch's writes are acknowledged with its output.
        """
        if self.agent.pipeline.seen is None or self._diverted or self._changelog is None:
            return
        batches = self.agent.batches

        def send(topic: str, *message: Any, partition: int | None) -> None:
            assert batches.output is not None
            batches.output.send(topic, *message, partition=partition)

        faust_internals.divert_table_writes(self.app.producer, self._changelog, send)
        self._diverted = True

    async def on_partitions_revoked(self, revoked: Any) -> None:
        """Before a rebalance moves partitions: finish the batches in flight, commit them.

        aiokafka rebalances eagerly: every partition is revoked, and each starts again at the
        group's committed offset, here or on another worker. Without this, the batches in
        flight and every record finished since the last timer commit would be processed
        twice. Each wait is bounded (a broker that is gone acknowledges nothing): what is not
        finished in time is processed again. A commit the group refuses (this worker's
        session was lost: the broker was away) is kept, and a partition assigned back starts
        from it.
        """
        wait = max(1.0, self.agent.settings.processor.session_timeout_s / 3)
        by_tp = {(tp.topic, tp.partition): tp for tp in revoked}
        positions = await self.agent.hand_back(list(by_tp), wait)
        offsets = {by_tp[tp]: position for tp, position in positions.items()}
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
            self.agent.resume_at(positions)


def _route_topics(settings: Settings) -> None:
    """Create the topics routes send to (beside the mirror): a failure is logged, and the
    records routed there go to the DLQ."""
    from shadowtap.kafka import clean_topic_spec, create_topics

    routed = sorted(
        {r.topic for r in settings.processor.routes if r.topic} - {settings.topics.mirror}
    )
    if not routed:
        return
    try:
        create_topics(settings, specs=[clean_topic_spec(settings.topics, n) for n in routed])
    except BrokerError as exc:
        log.warning("could not create a route topic: %s", exc)


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


def run_worker(settings: Settings, *, loglevel: str = "info") -> int:
    """Run the processor until SIGINT/SIGTERM; return the exit code."""
    from shadowtap.kafka import create_topics

    # Before the consumer subscribes, so it sees every partition; Faust creates only its own.
    create_topics(settings)
    settings = _with_captured_partitions(settings)
    _route_topics(settings)
    metrics = Metrics()
    metrics.serve(settings.processor.web_port)
    scrubbers = ScrubPool(settings) if settings.processor.scrub_processes else None
    try:
        with tempfile.TemporaryDirectory(prefix="shadowtap-processor-") as datadir:
            return run_app(build_app(settings, datadir, metrics, scrubbers), loglevel=loglevel)
    finally:
        if scrubbers is not None:
            scrubbers.close()
