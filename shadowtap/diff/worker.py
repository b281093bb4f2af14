"""``shadowtap diff serve``: the diff as a Faust agent, spread over as many workers as wanted.

Usage::

    shadowtap diff serve --run v2-rollout --baseline v1-a --secondary v1-b --candidate v2
    shadowtap diff report --run v2-rollout --fail-above 0.5%     # any time, from any machine

Every worker started with the same ``--run`` joins one consumer group
(``shadowtap-diff-<run>``) over ``topics.results``. Results are keyed by record id, so the
results of one record share a partition, and whichever worker owns the partition pairs
them: one pairing per partition (shadowtap.diff.pairing) kept in a Faust table, ``pairs``,
whose changelog topic is co-partitioned with the results. A worker that stops or crashes
loses nothing that waits: the next owner of its partitions recovers the table from the
changelog and resumes from the group's committed offsets. Pairing runs on capture time with
a grace period past the slowest target, in the table's entries, not in Faust's windowed
tables, whose windows close by the wall clock (a replay of last week would all be given up
at once).

Each worker compares what it pairs (shadowtap.diff.stage), writes sampled mismatches to
``topics.diffs`` and, every ``publish_s`` seconds and as it stops, its counters to
``topics.diff_states`` (shadowtap.diff.states), from which ``diff report --run`` merges
every worker's into one summary. Counters are summed over workers, so a worker that crashed
has its last published state counted, and comparisons since then (at most ``publish_s``)
are missing; their results come back to the next owner as redeliveries of records the table
says were done.

Results of targets the run does not name are skipped. Metrics (``--metrics-port``):
shadowtap.diff.stage.DiffMetrics.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from shadowtap import faust_internals
from shadowtap.clock import now_ms
from shadowtap.config import Settings
from shadowtap.diff.consumer import write_mismatches
from shadowtap.diff.run import DiffRun
from shadowtap.diff.stage import DiffMetrics, DiffStage, secret_headers
from shadowtap.diff.states import Publisher, producer_options
from shadowtap.errors import BrokerError, ConfigError
from shadowtap.faustapp import app_options, run_app
from shadowtap.kafka import produce

log = logging.getLogger("shadowtap.diff")

_RUN_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
MAX_ENTRY_BYTES = 16 * 1024 * 1024  # a table entry: the results a record waits with


@dataclass(frozen=True, slots=True)
class Serve:
    """What one ``shadowtap diff serve`` worker does."""

    run: str  # the run's name: its consumer group, table and states are its own
    targets: tuple[str, ...]
    grace_ms: int = 60_000
    max_pending: int = 200_000
    publish_s: float = 5.0
    write_diffs: bool = True

    def __post_init__(self) -> None:
        if not _RUN_NAME.fullmatch(self.run):
            raise ConfigError(
                f"--run {self.run!r}: a run's name is part of its consumer group and topic "
                "names; use letters, digits, '.', '_' and '-' (at most 100)"
            )

    @property
    def group(self) -> str:
        return f"shadowtap-diff-{self.run}"


def build_app(
    settings: Settings,
    serve: Serve,
    diff_run: DiffRun,
    datadir: str,
    metrics: DiffMetrics | None = None,
) -> Any:
    """The Faust app with its table, agent and publishing timer; nothing runs until a
    Worker starts it. ``datadir``: Faust's data directory (the memory store writes nothing)."""
    import faust

    from shadowtap.kafka import make_producer, partition_count

    topics = settings.topics
    partitions = partition_count(settings.kafka, topics.results) or topics.partitions
    app = faust.App(
        serve.group,
        datadir=datadir,
        **app_options(settings, partitions),
        broker_commit_interval=1.0,
        key_serializer="json",
        value_serializer="json",
        # A waiting record's entry holds each target's result (64 KiB bodies, both sides).
        consumer_max_fetch_size=MAX_ENTRY_BYTES,
        # Each worker keeps only its own partitions' entries: no standby copies of others'.
        table_standby_replicas=0,
    )
    table = app.Table(
        "pairs",
        default=None,
        partitions=partitions,
        extra_topic_configs={"max.message.bytes": str(MAX_ENTRY_BYTES)},
    )
    stage = DiffStage(
        diff_run,
        serve.targets,
        grace_ms=serve.grace_ms,
        max_pending=serve.max_pending,
        store=table,
        metrics=metrics,
    )
    producer = make_producer(settings.kafka, {"linger.ms": 20, **producer_options()})
    changelog = Changelog(
        make_producer(settings.kafka, {"linger.ms": 5, "message.max.bytes": MAX_ENTRY_BYTES})
    )
    key = f"{serve.run}/{uuid.uuid4().hex[:12]}"
    publisher = Publisher(settings, serve.run, key, producer)
    waiting: dict[int, tuple[int, int]] = {}  # partition: (records waiting, when counted)
    secret = secret_headers(settings.processor.scrub_headers)
    source = app.topic(topics.results, key_serializer="raw", value_serializer="raw")

    def count_waiting() -> dict[int, tuple[int, int]]:
        # Partitions paired here since their assignment; another's count of the others stands.
        now = now_ms()
        waiting.update((p, (n, now)) for p, n in stage.waiting().items())
        return waiting

    @app.agent(source)
    async def diff(stream: Any) -> None:
        changelog.divert(app.producer, table.changelog_topic.get_topic_name())
        try:
            async for event in stream.events():
                mismatches = stage.offer(event.value, event.message.partition)
                if serve.write_diffs and mismatches:
                    write_mismatches(producer, topics.diffs, mismatches, secret)
        finally:
            publisher.publish(stage, count_waiting(), final=True)

    async def publish() -> None:
        # The counters include what the table says was done: that must be in Kafka first,
        # or a crash would have the next owner compare those records again.
        try:
            await changelog.flush()
        except BrokerError as exc:
            log.warning("the diff state is not published: %s", exc)
            return
        publisher.publish(stage, count_waiting())

    app.timer(serve.publish_s)(publish)

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, /, *args: Any, signal: Any, **__: Any) -> None:
        # Faust sends the set of revoked TPs (every one: aiokafka rebalances eagerly); their
        # pairings are rebuilt from the table for those that come back.
        count_waiting()
        stage.release(tp.partition for tp in args[0] if tp.topic == topics.results)

    @app.on_partitions_assigned.connect
    async def _assigned(sender: Any, /, *args: Any, signal: Any, **__: Any) -> None:
        # The memory store forgets only the entries it recovered of a partition gone
        # elsewhere, not those this worker wrote: drop them from memory (not from the
        # changelog: they are the new owner's). A partition that comes back is recovered
        # from its changelog's start.
        mine = {tp.partition for tp in args[0] if tp.topic == topics.results}
        store = table.data
        for key in [k for k, e in store.items() if e.get("p") not in mine]:
            del store[key]

    return app


class Changelog:
    """The ``pairs`` table's changelog writes, through a librdkafka producer of their own.

    A record's results make three or four writes; sent by Faust's aiokafka producer, one at
    a time from a buffer of 100, they held the agent at a third of its speed. Taken from
    that buffer (shadowtap.faust_internals.divert_table_writes), they are queued here, and
    Faust's pre-commit flush waits for them too (``flush_also``): offsets are committed only
    after the writes made before the commit began are acknowledged (later ones may go on
    being queued meanwhile). A write the broker refused fails the next commit (the worker
    stops, and its events are read again by the next owner) rather than being forgotten.
    """

    def __init__(self, producer: Any, wait_s: float = 30.0) -> None:
        self.producer = producer
        self.wait_s = wait_s
        self.sent = 0
        self._settled = 0  # acknowledged or refused: delivery reports come on any thread
        self._failed = 0
        self._lock = threading.Lock()
        self._diverted = False

    def divert(self, faust_producer: Any, topic: str) -> None:
        if self._diverted:
            return
        faust_internals.divert_table_writes(faust_producer, topic, self.send)
        faust_internals.flush_also(faust_producer, self.flush)
        self._diverted = True

    def send(
        self, topic: str, key: bytes, value: bytes | None, headers: Any, *, partition: int
    ) -> None:
        self.sent += 1
        produce(self.producer, topic, value, key, headers=headers, partition=partition,
                on_delivery=self._report)  # fmt: skip
        self.producer.poll(0)

    async def flush(self) -> None:
        """Wait until every write sent so far is settled; BrokerError if one was refused."""
        target = self.sent

        def wait() -> bool:
            deadline = time.monotonic() + self.wait_s
            while self._settled < target and time.monotonic() < deadline:
                self.producer.poll(0.05)
            return self._settled >= target

        done = await asyncio.get_running_loop().run_in_executor(None, wait)
        with self._lock:
            failed, self._failed = self._failed, 0
        if failed or not done:
            raise BrokerError(
                f"{failed or target - self._settled} pairs table changelog writes were not "
                "acknowledged: offsets are not committed, and their results will be read again"
            )

    def _report(self, err: Any, _msg: Any) -> None:
        with self._lock:
            self._settled += 1
            if err is not None:
                self._failed += 1
        if err is not None:
            log.error("a pairs table changelog write failed: %s", err)


def run_worker(
    settings: Settings,
    serve: Serve,
    diff_run: DiffRun,
    *,
    metrics: DiffMetrics | None = None,
    loglevel: str = "info",
) -> int:
    """Run one diff worker until SIGINT/SIGTERM; return the exit code."""
    from shadowtap.diff.states import ensure_topic
    from shadowtap.kafka import create_topics

    create_topics(settings)  # the results and diffs topics, before the agent subscribes
    ensure_topic(settings)
    with tempfile.TemporaryDirectory(prefix="shadowtap-diff-") as datadir:
        app = build_app(settings, serve, diff_run, datadir, metrics)
        return run_app(app, loglevel=loglevel)
