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
from shadowtap.drill.plan import Plan
from shadowtap.envelope import decode
from shadowtap.errors import EnvelopeError
from shadowtap.kafka import make_admin, make_consumer
from shadowtap.replayers.lanes import TP
from shadowtap.replayers.source import Accept, ConsumerSource
from shadowtap.replayers.worker import Replayer

log = logging.getLogger("shadowtap.drill")


def drill_group(name: str) -> str:
    return f"shadowtap-drill-{name}"


def forget_checkpoints(settings: Settings, name: str, timeout: float = 15.0) -> None:
    """Start a drill name over: delete its group (BrokerError-free when it has none).
    Fails (KafkaException) while a process of that drill runs."""
    admin = make_admin(settings.kafka)
    futures = admin.delete_consumer_groups([drill_group(name)], request_timeout=timeout)
    for future in futures.values():
        try:
            future.result(timeout)
        except KafkaException as exc:
            code = exc.args[0].name() if exc.args else ""
            if code not in ("GROUP_ID_NOT_FOUND",):
                raise


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
        self._accept: Accept | None = None
        self.skipped = 0

    def read(self, limit: int, accept: Accept) -> int:
        self._accept = accept
        return self.inner.read(limit, self._filter)

    def _filter(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes
    ) -> None:
        span = self._run.plan.spans.get(partition)
        if span is None or offset > span.last:
            self._run.ended.add((topic, partition))
            self.inner.pause((topic, partition))
            return
        try:
            env = decode(value)
            wanted = self._window.holds(env.ts) and self._chosen.selects(env)
        except EnvelopeError:
            wanted = False
        if wanted:
            assert self._accept is not None
            self._accept(topic, partition, offset, key, value)
            return
        tracker = self._run.engine.tracker
        tracker.add((topic, partition), offset)
        tracker.done((topic, partition), offset)
        self.skipped += 1

    def pause_all(self) -> None:
        self.inner.pause_all()

    def resume_all(self, keep_paused: Collection[TP]) -> None:
        self.inner.resume_all(set(keep_paused) | self._run.ended)

    def pause(self, tp: TP) -> None:
        self.inner.pause(tp)

    def resume(self, tp: TP) -> None:
        if tp not in self._run.ended:
            self.inner.resume(tp)


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
        self.finished = False
        self.started = time.monotonic()
        self.window_source: WindowSource | None = None
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
                "fetch.wait.max.ms": 50,
                "on_commit": self._on_commit,
            },
        )
        self.attach(consumer)
        assert self.source is not None
        self.window_source = WindowSource(self.source, self)
        await self.engine.open()
        try:
            consumer.subscribe(
                [self.plan.topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            await self.engine.pump(
                self.window_source, self._stop, self._checkpoint, rs.commit_interval_s
            )
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
        committed = consumer.committed(partitions, timeout=10)
        chosen = []
        for p in committed:
            span = self.plan.spans.get(p.partition)
            start = span.start if span is not None else 0
            offset = p.offset if p.offset >= 0 else start
            chosen.append(TopicPartition(p.topic, p.partition, offset))
            tp = (p.topic, p.partition)
            self._starts[tp] = offset
            self.ended.discard(tp)
            if span is None or offset > span.last:
                self.ended.add(tp)
        consumer.incremental_assign(chosen)
        super()._on_assign(consumer, partitions)
        for p in chosen:
            if (p.topic, p.partition) in self.ended:
                consumer.pause([p])

    def _done_here(self, tp: TP) -> bool:
        span = self.plan.spans.get(tp[1])
        if span is None or span.last < self._starts.get(tp, 0):
            return True
        position = self.engine.tracker.position(tp)
        return position is not None and position > span.last

    def _checkpoint(self) -> None:
        self._commit()
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
