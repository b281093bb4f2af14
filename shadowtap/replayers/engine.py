"""The replay engine: records from any source delivered to one target, finished in order.

It knows nothing of consumer groups. A source hands it records (topic, partition, offset,
key, value); it decodes them, keeps each key's records in order (shadowtap.replayers.lanes),
reads no more than the window allows and parks what paced replay has not made due yet
(shadowtap.replayers.backpressure), waits for each record's due time and the rate ceiling
(shadowtap.replayers.pacing), delivers it under the policy (shadowtap.replayers.policy), and
writes its result or DLQ record (shadowtap.replayers.outbox). A record is finished when
Kafka acknowledged those; ``tracker`` (shadowtap.replayers.tracker) then moves its
partition's position, the offset below which every record read is finished. Whoever runs
the engine decides what to do with positions: the group worker commits them
(shadowtap.replayers.worker), a drill can checkpoint them::

    engine = Engine(settings)               # or Engine(settings, client=httpx.AsyncClient(...))
    await engine.open()                     # its HTTP sender and librdkafka producer
    engine.assign([("shadowtap.mirror", 0)])     # partitions whose records are ours
    await engine.pump(ConsumerSource(consumer), stop, checkpoint, every_s=1.0)
    engine.tracker.to_commit()              # [(topic, partition, position)] not sent yet
    await engine.drain(source, timeout=10)
    await engine.stop()                     # then keep the last positions
    await engine.close()

``revoke(tps)`` gives partitions up: their records still waiting for a delivery slot are
dropped (another reader sends them), those in flight finish without moving a position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import httpx

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode
from shadowtap.errors import ConfigError, EnvelopeError
from shadowtap.kafka import make_producer
from shadowtap.replayers.backpressure import LOOKAHEAD_S, Backpressure, Valve
from shadowtap.replayers.lanes import TP, Item, Lanes
from shadowtap.replayers.metrics import Metrics
from shadowtap.replayers.outbox import Outbox
from shadowtap.replayers.pacing import Pacer, parse_rate, parse_speed
from shadowtap.replayers.policy import HttpxSender, Policy, Sender, deliver, make_sender
from shadowtap.replayers.rewrite import Rewriter
from shadowtap.replayers.source import Accept
from shadowtap.replayers.tracker import CommitTracker
from shadowtap.results import Delivery
from shadowtap.tokenbucket import TokenBucket

log = logging.getLogger("shadowtap.replayer")


class Source(Valve, Protocol):
    """What the engine reads from (shadowtap.replayers.source.ConsumerSource)."""

    def read(self, limit: int, accept: Accept) -> int: ...


class Engine:
    """Lanes, backpressure, pacing, delivery and the outbox over one source's records."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient | None = None,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        rs = settings.replayer
        self.rewriter = Rewriter(rs)
        self.target = self.rewriter.target.name
        self.policy = Policy.from_settings(rs, settings.marking)
        self.pacer = Pacer(parse_speed(rs.speed), start_delay_s=LOOKAHEAD_S)
        rate = parse_rate(rs.rate_per_s)
        self.bucket = TokenBucket(rate) if rate else None
        if rs.max_in_flight < 1:
            raise ConfigError("replayer.max_in_flight must be at least 1")
        self.metrics = metrics or Metrics()
        # An injected client is the caller's to close; our own sender is ours.
        self._sender: Sender | None = HttpxSender(client) if client is not None else None
        self._own_sender = client is None
        self.tracker = CommitTracker()
        self._gen: dict[TP, int] = {}  # each partition's assignment: records read before
        self.lanes = Lanes(self._handle)
        self.backpressure = Backpressure(rs.max_buffered or rs.max_in_flight * 8, self.pacer)
        self._parked = self.backpressure.parked
        self.outbox = Outbox(settings, self.target, self._finish)
        self._sem = asyncio.Semaphore(rs.max_in_flight)
        self._m_in_flight = self.metrics.in_flight.labels(self.target)
        self._m_buffered = self.metrics.buffered.labels(self.target)
        self._m_latency = self.metrics.latency.labels(self.target)
        self._m_delivered: dict[int, Any] = {}
        self.delivered = 0  # records finished (progress)
        # Told of every delivery as it is handed to the outbox (a drill's report).
        self.observe: Callable[[Envelope, Delivery], None] | None = None

    # -- partitions --------------------------------------------------------------------

    def assign(self, tps: Iterable[TP]) -> None:
        """These partitions' records are ours from now on (a new assignment)."""
        for tp in tps:
            self._gen[tp] = self._gen.get(tp, 0) + 1
            self.tracker.assign(tp)

    def revoke(self, tps: Iterable[TP]) -> None:
        """These partitions are read elsewhere now: their unsent records are not ours."""
        for tp in tps:
            self.tracker.revoke(tp)
            self.backpressure.forget(tp)
            self._gen[tp] = self._gen.get(tp, 0) + 1

    # -- records in --------------------------------------------------------------------

    def accept(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        *,
        env: Envelope | None = None,
    ) -> None:
        """One record read, in offset order per partition (``env``: already decoded)."""
        tp = (topic, partition)
        gen = self._gen.get(tp)
        if gen is None:  # read before its assignment was announced (should not happen)
            gen = self._gen[tp] = 0
            self.tracker.assign(tp)
        item = Item(tp, offset, gen, key, value)
        self.tracker.add(tp, offset)
        if env is not None:
            item.env = env
        else:
            try:
                item.env = decode(value)
            except EnvelopeError as exc:
                item.error = exc
        parked = self._parked.get(tp)
        if parked is not None:  # the partition is held: keep its order, send later
            self.backpressure.park(tp, parked, item)
            return
        self._dispatch(item)

    def _dispatch(self, item: Item) -> None:
        self.lanes.dispatch(item)
        if self.pacer.speed is not None and item.env is not None:
            self.backpressure.hold_if_ahead(item.tp, item.env.ts)

    async def _handle(self, item: Item) -> None:
        """Deliver one record (its lane's turn) and hand what it left to the outbox."""
        if self._gen.get(item.tp) != item.gen:
            return  # revoked since it was read: its new owner sends it
        if item.error is not None or item.env is None:
            reason = item.error.reason if item.error else "not-envelope"
            self.metrics.failed.labels(self.target, reason).inc()
            self.outbox.to_dlq(item, reason, str(item.error), 0)
            return
        env = item.env
        blocked = self.rewriter.blocked(env)
        if blocked is not None:
            self.metrics.skipped.labels(self.target, blocked).inc()
            skipped = Delivery(error_kind="blocked", error=blocked)
            if self.observe is not None:
                self.observe(env, skipped)
            self.outbox.publish(item, env, skipped)
            return
        if self.pacer.speed is not None:
            self.backpressure.waiting += 1
            try:
                await self.pacer.wait(env.ts)
            finally:
                self.backpressure.waiting -= 1
        if self.bucket is not None:
            await self.bucket.acquire()
        out = self.rewriter.rewrite(env)
        async with self._sem:
            if self._gen.get(item.tp) != item.gen:
                return  # revoked while it waited for a slot: its new owner sends it
            self._m_in_flight.inc()
            try:
                assert self._sender is not None
                delivery = await deliver(self._sender, out, self.policy, on_retry=self._on_retry)
            finally:
                self._m_in_flight.dec()
        if delivery.failed or delivery.error_kind:
            self.metrics.failed.labels(self.target, delivery.error_kind).inc()
            self.outbox.to_dlq(item, delivery.error_kind, delivery.error, delivery.attempts)
        else:
            status_class = (delivery.status or 0) // 100
            counter = self._m_delivered.get(status_class)
            if counter is None:
                counter = self.metrics.delivered.labels(self.target, f"{status_class}xx")
                self._m_delivered[status_class] = counter
            counter.inc()
            self._m_latency.observe(delivery.duration_ms / 1000)
        if self.observe is not None:
            self.observe(env, delivery)
        self.outbox.publish(item, env, delivery)

    def _on_retry(self, reason: str) -> None:
        self.metrics.retries.labels(self.target, reason).inc()

    def _finish(self, item: Item) -> None:
        if self._gen.get(item.tp) == item.gen:
            self.tracker.done(item.tp, item.offset)
        self.delivered += 1

    # -- running -----------------------------------------------------------------------

    async def open(self) -> None:
        """Make what was not given: the sender (no client) and the outbox's producer."""
        if self.outbox.producer is None:
            self.outbox.producer = make_producer(self.settings.kafka, {"linger.ms": 10})
        if self._sender is None:
            self._sender = make_sender(self.settings.replayer)

    async def pump(
        self,
        source: Source,
        stop: asyncio.Event,
        checkpoint: Callable[[], object],
        every_s: float,
    ) -> None:
        """Read ``source`` as the window allows until ``stop`` is set, serving the outbox's
        acknowledgements; call ``checkpoint`` every ``every_s`` seconds."""
        bp = self.backpressure
        bp.valve = source
        next_checkpoint = time.monotonic() + every_s
        idle = 0.001
        while not stop.is_set():
            self.outbox.poll()
            budget = bp.budget(self.lanes.buffered)
            read = source.read(budget, self.accept) if budget else 0
            bp.after_read()
            now = time.monotonic()
            if bp.held_until:
                bp.release(now, self._dispatch)
            if now >= next_checkpoint:
                checkpoint()
                next_checkpoint = now + every_s
            self._m_buffered.set(self.lanes.buffered)
            if read:
                idle = 0.001
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(idle)
                idle = min(idle * 2, 0.005)

    async def drain(self, source: Valve, timeout: float) -> None:
        """Stop reading; give lanes and pending acks ``timeout`` seconds to finish."""
        source.pause_all()
        deadline = time.monotonic() + timeout
        while (self.lanes.busy or self.outbox.unacked) and time.monotonic() < deadline:
            self.outbox.poll(0.005)
            await asyncio.sleep(0.005)
        if self.lanes.busy:
            log.warning(
                "drain deadline: %d records unfinished, sent again later", self.lanes.buffered
            )

    async def stop(self) -> None:
        """Stop the lanes and wait briefly for what is on its way to Kafka: the positions
        are final after this (what did not finish is read again later)."""
        await self.lanes.cancel()
        if self.outbox.producer is not None:
            with contextlib.suppress(Exception):
                self.outbox.flush(5)

    async def close(self) -> None:
        """Close our sender (after the last positions were kept)."""
        if self._own_sender and self._sender is not None:
            await self._sender.aclose()
