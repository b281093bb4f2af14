"""Delivering a drill's window: the replayer's engine, fed by the window, with checkpoints.

The engine (shadowtap.replayers.engine) does what ``shadowtap replay`` does: rewrite,
credentials, policy, retries, per-key order, pacing, the rate ceiling, results and the DLQ.
This module only decides what it reads and where positions are kept:

- the drill's own consumer group, ``shadowtap-drill-<name>``: never a replayer's group, so
  a drill neither joins nor moves one. Positions are committed after delivery exactly as
  the replayer commits them (this shell is the replayer's group shell, :class:`Replayer`,
  with the drill's start offsets and end): a crash or Ctrl-C loses nothing, and ``--resume``
  re-sends at most what was in flight;
- each partition is read from the plan's first offset (or the group's position when
  resuming) to the plan's last record; records outside ``[from, to)`` or the filters are
  finished without being sent;
- several processes with one drill name share the partitions (the group spreads them); each
  runs until every partition of the window is committed to its end::

    drill = DrillRun(settings, plan, name="tuesday-peak")   # settings.replayer: target, speed
    drill.engine.observe = report.add                       # every delivery, for the report
    await drill.run(stop)                                   # returns when done or stopped
    drill.finished                                          # the whole window was delivered
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Collection
from typing import Any

import httpx
from confluent_kafka import OFFSET_INVALID, KafkaException, TopicPartition

from shadowtap.config import Settings
from shadowtap.drill.gaps import gap_warp
from shadowtap.drill.plan import Plan, Span
from shadowtap.envelope import decode
from shadowtap.errors import EnvelopeError
from shadowtap.kafka import make_admin, make_consumer, make_producer
from shadowtap.replayers.lanes import TP
from shadowtap.replayers.source import Accept, ConsumerSource
from shadowtap.replayers.worker import Replayer

log = logging.getLogger("shadowtap.drill")

# Positions are committed (and acknowledged) at least this often, and results are sent to
# Kafka at once: after a crash, what finished since the last commit is sent again beside
# what was in flight, so a drill keeps that short (opensearch-migrations#1686).
CHECKPOINT_S = 0.02


def drill_group(name: str) -> str:
    return f"shadowtap-drill-{name}"


def forget_checkpoints(settings: Settings, name: str, timeout: float = 15.0) -> None:
    """Start a drill name over: delete its group (nothing to do when it has none). Raises
    KafkaException while a process of that drill runs (NON_EMPTY_GROUP)."""
    admin = make_admin(settings.kafka)
    deadline = time.monotonic() + timeout
    while True:
        future = admin.delete_consumer_groups([drill_group(name)], request_timeout=timeout)
        try:
            next(iter(future.values())).result(timeout)
            return
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            code = error.name() if error is not None else ""
            if code == "GROUP_ID_NOT_FOUND":
                return
            if code not in _SETTLING or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# What a group coordinator answers for a moment after the broker starts.
_SETTLING = frozenset(
    {"NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE"}
)
# Kafka keeps at most 4096 bytes of metadata with a committed offset (offset.metadata.max.bytes).
_METADATA_MAX = 4000


def finished_metadata(position: int, finished: set[int]) -> str:
    """Offsets finished past ``position``, as deltas (``"3,4,9"``); cut to fit Kafka's limit
    (those left out are sent again after a crash)."""
    text = ""
    for offset in sorted(finished):
        item = f"{offset - position},"
        if len(text) + len(item) > _METADATA_MAX:
            break
        text += item
    return text.rstrip(",")


def parse_metadata(position: int, text: str | None) -> set[int]:
    """The offsets :func:`finished_metadata` wrote (anything else: none)."""
    if not text:
        return set()
    try:
        return {position + int(d) for d in text.split(",")}
    except ValueError:
        return set()


class WindowSource:
    """The consumer's records, cut to the plan: records past a partition's last one are not
    handed on (the partition is paused for good); those outside the window or the filters
    are finished at once, unsent."""

    def __init__(self, inner: ConsumerSource, run: DrillRun) -> None:
        self.inner = inner
        self._run = run
        self._chosen = run.plan.selection.compiled()
        self._window = run.plan.window
        self._topic = run.plan.topic
        self.skipped = 0

    def read(self, limit: int, _accept: Accept) -> int:
        """Up to ``limit`` records; those in the window go to the drill's engine."""
        return self.inner.read(limit, self._filter)

    def _filter(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes
    ) -> None:
        span = self._run.plan.spans.get(partition)
        if span is None or offset > span.last:
            self._run.ended.add((topic, partition))
            self.inner.pause((topic, partition))
            return
        if offset in self._run.delivered_before.get((topic, partition), ()):
            self._finish(topic, partition, offset)  # delivered before a crash: not again
            return
        try:
            env = decode(value)
        except EnvelopeError:
            env = None
        if env is not None and self._window.holds(env.ts) and self._chosen.selects(env):
            self._run.engine.accept(topic, partition, offset, key, value, env=env)  # decoded once
            return
        self._finish(topic, partition, offset)
        self.skipped += 1

    def _finish(self, topic: str, partition: int, offset: int) -> None:
        tracker = self._run.engine.tracker
        tracker.add((topic, partition), offset)
        tracker.done((topic, partition), offset)

    def pause_all(self) -> None:
        self.inner.pause_all()

    def resume_all(self, keep_paused: Collection[TP]) -> None:
        self.inner.resume_all(set(keep_paused) | self._run.ended)

    def pause(self, tp: TP) -> None:
        self.inner.pause(tp)

    def resume(self, tp: TP) -> None:
        if tp not in self._run.ended:
            self.inner.resume(tp)


def _last(span: Span | None) -> int | None:
    """A span's last offset; None for a partition the plan did not see (added since)."""
    return None if span is None else span.last


class DrillRun(Replayer):
    """The replayer's group shell in the drill's own group, reading the plan's window."""

    def __init__(
        self,
        settings: Settings,
        plan: Plan,
        name: str,
        client: httpx.AsyncClient | None = None,
        *,
        idle_gap_s: float = 0.0,
        resume: bool = False,
    ) -> None:
        rs = dataclasses.replace(settings.replayer, group=drill_group(name))
        super().__init__(dataclasses.replace(settings, replayer=rs), client)
        self.plan = plan
        self.name = name
        self.ended: set[TP] = set()  # partitions read to their last record here
        self._starts: dict[TP, int] = {}
        # Per partition, offsets past its committed position delivered before a crash.
        self.delivered_before: dict[TP, set[int]] = {}
        self._ahead_sent: dict[TP, frozenset[int]] = {}  # finished-ahead last committed
        self.finished = False
        self.started = time.monotonic()
        self.window_source: WindowSource | None = None
        self._consumer: Any = None
        pacer = self.engine.pacer
        pacer.warp = gap_warp(plan.times, round(idle_gap_s * 1000))
        if not resume and plan.first_ts is not None:
            pacer.origin_ts = pacer.warp(plan.first_ts) if pacer.warp else plan.first_ts

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until the window is done everywhere or ``stop``; then drain and commit."""
        if stop is not None:
            self._stop = stop
        rs = self.settings.replayer
        consumer = make_consumer(
            self.settings.kafka,
            rs.group,
            {
                "session.timeout.ms": int(rs.session_timeout_s * 1000),
                # Another process of the drill joining is heard of at the next heartbeat.
                "heartbeat.interval.ms": max(100, int(rs.session_timeout_s * 1000 / 4)),
                "fetch.wait.max.ms": 50,
                "on_commit": self._on_commit,
            },
        )
        # One consumer in the drill's group; no retry topic (the drill reads the window only).
        self._consumer = consumer
        self._consumers = {self.plan.topic: consumer}
        self.window_source = WindowSource(ConsumerSource(consumer), self)
        if self.engine.outbox.producer is None:
            self.engine.outbox.producer = make_producer(self.settings.kafka, {"linger.ms": 1})
        await self.engine.open()
        try:
            consumer.subscribe(
                [self.plan.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            every = min(rs.commit_interval_s, CHECKPOINT_S)
            await self.engine.pump(self.window_source, self._stop, self._checkpoint, every)
            await self.engine.drain(self.window_source, rs.drain_timeout_s)
        finally:
            await self.engine.stop()
            self._commit(sync=True)
            if not self.finished:
                self.finished = self._all_committed()
            with contextlib.suppress(Exception):
                consumer.close()
            await self.engine.close()

    # -- where each partition starts, and when the window is done ----------------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        # A position the group refused before (a coordinator away) is committed again
        # first, so the read starts after what was finished here, not at the older commit.
        self._recommit(consumer, [(p.topic, p.partition) for p in partitions])
        committed = consumer.committed(partitions, timeout=10)
        chosen = []
        for p in committed:
            span = self.plan.spans.get(p.partition)
            start = span.start if span is not None else 0
            offset = p.offset if p.offset >= 0 else start
            chosen.append(TopicPartition(p.topic, p.partition, offset))
            tp = (p.topic, p.partition)
            self._starts[tp] = offset
            self.delivered_before[tp] = parse_metadata(offset, p.metadata)
            self.ended.discard(tp)
            if span is None or offset > span.last:
                self.ended.add(tp)
        consumer.incremental_assign(chosen)
        log.info(
            "reading the window: {partition: (first offset, last offset)} %s",
            {p.partition: (p.offset, _last(self.plan.spans.get(p.partition))) for p in chosen},
        )
        super()._on_assign(consumer, partitions)
        for p in chosen:
            if (p.topic, p.partition) in self.ended:
                consumer.pause([p])

    def _forget(self, tps: list[TP]) -> None:
        """Partitions another process of this drill reads now: not ours to finish."""
        super()._forget(tps)
        for tp in tps:
            self._starts.pop(tp, None)
            self.delivered_before.pop(tp, None)
            self._ahead_sent.pop(tp, None)

    def _position(self, topic: str, partition: int, offset: int) -> TopicPartition:
        """The position, and what finished beyond it: a resumed drill sends those no more."""
        ahead = self.engine.tracker.finished_ahead((topic, partition))
        self._ahead_sent[(topic, partition)] = frozenset(ahead)  # _commit_ahead need not
        return TopicPartition(topic, partition, offset, metadata=finished_metadata(offset, ahead))

    def _commit_ahead(self) -> None:
        """Commit what finished past a position that did not move (a slow record holds it),
        so a crash does not send those again either."""
        tracker = self.engine.tracker
        changed = []
        for tp, start in self._starts.items():
            ahead = frozenset(tracker.finished_ahead(tp))
            if ahead and ahead != self._ahead_sent.get(tp):
                position = tracker.position(tp)
                changed.append((tp, start if position is None else position, ahead))
        if not changed or self._consumer is None:
            return
        try:
            self._consumer.commit(
                offsets=[self._position(t, p, at) for (t, p), at, _ in changed],
                asynchronous=False,
            )
        except KafkaException as exc:
            log.warning("commit failed: %s", exc)
            return

    def _done_here(self, tp: TP) -> bool:
        span = self.plan.spans.get(tp[1])
        if span is None or span.last < self._starts.get(tp, 0):
            return True
        position = self.engine.tracker.position(tp)
        return position is not None and position > span.last

    def _checkpoint(self) -> None:
        self._commit(sync=True)  # acknowledged before more finish: a crash repeats little
        self._commit_ahead()
        mine = list(self._starts)
        if mine and all(self._done_here(tp) for tp in mine) and not self.engine.lanes.busy:
            self._commit(sync=True)
            if self._all_committed():
                self.finished = True
                self._stop.set()

    def _all_committed(self) -> bool:
        """Every partition of the window committed past its last record (by any process)."""
        wanted = [
            TopicPartition(self.plan.topic, s.partition)
            for s in self.plan.spans.values()
            if s.last >= s.start
        ]
        if not wanted:
            return True
        try:
            got = self._consumer.committed(wanted, timeout=10)
        except KafkaException as exc:
            log.warning("could not read the drill's positions: %s", exc)
            return False
        spans = self.plan.spans
        return all(p.offset != OFFSET_INVALID and p.offset > spans[p.partition].last for p in got)
