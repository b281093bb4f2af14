"""The replayer worker: consume ``shadowtap.mirror`` in a group and deliver to one target.

Usage::

    shadowtap replay --target https://staging.internal --group staging \
        [--bootstrap HOST:PORT] [--config shadowtap.toml] [--speed max|1x|2x|0.5x] \
        [--rate 500/s] [--max-in-flight 64] [--metrics-port 9108]

    from shadowtap.replayers.worker import Replayer, run_replayer
    run_replayer(settings)                              # blocking; SIGTERM/SIGINT drain
    await Replayer(settings, client=httpx.AsyncClient(transport=...)).run(stop_event)

Run N workers with one ``group`` and Kafka spreads the partitions; another group (a DR
site) gets all the traffic again. Each worker also reads its group's retry topic
(``topics.retry_prefix`` + group, created at start if missing), where ``shadowtap dlq
redrive`` sends records that failed for this group only (shadowtap.redrive).

Settings, section ``[replayer]`` (``SHADOWTAP_REPLAYER_*``):

- ``target`` (URL, validated at start-up), ``target_name`` (label; default the host),
  ``group`` (consumer group);
- rewrite and credentials: ``path_prefix``, ``host_header``, ``remove_headers``,
  ``set_headers``, ``add_headers``, ``allow``/``deny`` rules, ``auth_header``,
  ``auth_value``/``auth_env``, ``principal_key``/``principal_accounts``/``principal_default``
  (see shadowtap.replayers.rewrite);
- pacing: ``speed``, ``rate_per_s`` (see shadowtap.replayers.pacing);
- delivery: ``timeout_s``, ``connect_timeout_s``, ``retries``, ``retry_statuses``,
  ``backoff_base_s``, ``backoff_max_s``, ``connect_retry_s``, ``verify_tls``, ``ca_file``,
  ``transport``, ``http2`` (see shadowtap.replayers.policy);
- ``max_in_flight`` (64) requests awaiting an answer; ``max_buffered`` (default 8 × that)
  records read and not yet sent: when the window is full the worker stops reading, and
  after a second pauses its partitions (polling goes on, so it stays in the group): a slow
  or dead target makes lag grow while memory stays flat. Paced replay (``speed`` not
  ``max``) also parks records read more than a second ahead of their due time, in order,
  at most 2,000 per partition before that partition is paused;
- ``incomplete`` (``skip``): a record whose request body is not all there (unread by the
  production app, cut off, over the capture limit) is not sent; ``send`` sends it without
  that body. Its result says ``incomplete`` either way (see shadowtap.replayers.rewrite);
- ``results`` (true): one result record per delivery on ``topics.results``
  (shadowtap.replayers.results), body kept up to ``result_body_limit`` bytes;
- ``commit_interval_s`` (1), ``drain_timeout_s`` (10) on SIGTERM, ``session_timeout_s``
  (10, how soon the group notices a dead worker), ``metrics_port`` (0: off).

Guarantees: records with the same Kafka key are delivered one after another in offset
order; different keys in parallel. A record is finished when its result (and DLQ record, if
any) is acknowledged by Kafka; offsets are committed up to the first unfinished record of
each partition (at-least-once, no gaps), on a timer, when partitions are revoked and at
shutdown. After a crash, only unfinished records are sent again, with the same
``Idempotency-Key``. A rebalance sends again at most the revoked partitions' records in
flight: records still waiting for a slot are left to the new owner, and a commit the group
refused (a new generation, a session lost while the broker was away) is made again once the
partition is assigned back, unless the group has moved past it. Records that cannot be
decoded, or whose delivery failed after the policy's retries, go to ``topics.dlq`` with
``shadowtap-dlq-reason``/``-error`` headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import httpx
import orjson
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, TopicPartition

from shadowtap import dlq
from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode
from shadowtap.errors import BrokerError, ConfigError, EnvelopeError
from shadowtap.kafka import create_topics, make_consumer, make_producer, retry_topic_spec
from shadowtap.replayers import results
from shadowtap.replayers.metrics import Metrics
from shadowtap.replayers.pacing import Pacer, parse_rate, parse_speed
from shadowtap.replayers.policy import (
    HttpxSender,
    Policy,
    Sender,
    deliver,
    make_sender,
)
from shadowtap.replayers.results import Delivery
from shadowtap.replayers.rewrite import Rewriter, incomplete
from shadowtap.replayers.tracker import CommitTracker
from shadowtap.tokenbucket import TokenBucket

log = logging.getLogger("shadowtap.replayer")

TP = tuple[str, int]
# How long the window may stay full before the partitions are paused.
_PAUSE_AFTER_S = 1.0
# Paced replay reads a partition at most this far ahead of the records' due times.
_LOOKAHEAD_S = 1.0
# Records parked per partition before it is paused (paced replay; memory bound).
_PARK_MAX = 2000
# How long a revoke waits for results on their way to Kafka (the loop waits meanwhile).
_REVOKE_FLUSH_S = 2.0


class _Item:
    """One record between read and finished."""

    __slots__ = ("acks", "env", "error", "gen", "key", "offset", "tp", "value")

    def __init__(self, tp: TP, offset: int, gen: int, key: bytes | None, value: bytes) -> None:
        self.tp = tp
        self.offset = offset
        self.gen = gen
        self.key = key
        self.value = value
        self.env: Envelope | None = None
        self.error: EnvelopeError | None = None
        self.acks = 0


class Replayer:
    """One worker process's consumer loop, lanes per key and commit bookkeeping."""

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
        self.pacer = Pacer(parse_speed(rs.speed), start_delay_s=_LOOKAHEAD_S)
        rate = parse_rate(rs.rate_per_s)
        self.bucket = TokenBucket(rate) if rate else None
        if rs.max_in_flight < 1:
            raise ConfigError("replayer.max_in_flight must be at least 1")
        self.max_buffered = rs.max_buffered or rs.max_in_flight * 8
        # Records ``shadowtap dlq redrive`` sends back to this group only (see
        # shadowtap.redrive); read beside the mirror topic.
        self.retry_topic = settings.topics.retry(rs.group)
        self.metrics = metrics or Metrics()
        # An injected client is the caller's to close; our own sender is ours.
        self._sender: Sender | None = HttpxSender(client) if client is not None else None
        self._own_sender = client is None
        self._tracker = CommitTracker()
        # Finished positions the group refused, for partitions no longer assigned here.
        self._recommits: dict[TP, int] = {}
        self._gen: dict[TP, int] = {}
        self._lanes: dict[tuple[int, Any], deque[_Item]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._buffered = 0
        self._waiting = 0
        self._unacked = 0
        self._paused = False
        self._repause = False
        # Paced replay: partitions paused until their records are due, with what was read.
        self._parked: dict[TP, deque[_Item]] = {}
        self._held_until: dict[TP, float] = {}
        self._park_paused: set[TP] = set()
        self._sem = asyncio.Semaphore(rs.max_in_flight)
        self._consumer: Any = None
        self._producer: Any = None
        self._stop = asyncio.Event()
        self._m_in_flight = self.metrics.in_flight.labels(self.target)
        self._m_buffered = self.metrics.buffered.labels(self.target)
        self._m_latency = self.metrics.latency.labels(self.target)
        self._m_delivered: dict[int, Any] = {}
        self.delivered = 0  # results finished by this worker (tests, benchmarks)

    def stop(self) -> None:
        """Ask the loop to drain and exit (safe from a signal handler in the loop)."""
        self._stop.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume and deliver until ``stop`` (or :meth:`stop`), then drain and commit."""
        if stop is not None:
            self._stop = stop
        rs = self.settings.replayer
        topics = self.settings.topics
        self._consumer = make_consumer(
            self.settings.kafka,
            rs.group,
            {
                "session.timeout.ms": int(rs.session_timeout_s * 1000),
                "heartbeat.interval.ms": max(100, int(rs.session_timeout_s * 1000 / 4)),
                "queued.max.messages.kbytes": 8192,
                # A resumed partition joins the next fetch request: keep long-polls short.
                "fetch.wait.max.ms": 50,
                "statistics.interval.ms": 5000,
                "stats_cb": self._on_stats,
                "on_commit": self._on_commit,
            },
        )
        self._producer = make_producer(self.settings.kafka, {"linger.ms": 10})
        if self._sender is None:
            self._sender = make_sender(rs)
        server = self.metrics.serve(rs.metrics_port) if rs.metrics_port else None
        try:
            retry_spec = retry_topic_spec(topics, rs.group)
            await asyncio.to_thread(create_topics, self.settings, specs=[retry_spec])
            self._consumer.subscribe(
                [topics.mirror, self.retry_topic],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
            )
            await self._loop()
            await self._drain(rs.drain_timeout_s)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                self._producer.flush(5)
            self._commit(sync=True)
            with contextlib.suppress(Exception):
                self._consumer.close()
            if self._own_sender and self._sender is not None:
                await self._sender.aclose()
            if server is not None:
                server.shutdown()
                server.server_close()

    # -- the loop ---------------------------------------------------------------------

    async def _loop(self) -> None:
        interval = self.settings.replayer.commit_interval_s
        next_commit = time.monotonic() + interval
        idle = 0.001
        full_since: float | None = None
        while not self._stop.is_set():
            self._producer.poll(0)
            # Records waiting for their due time (paced replay) are bounded by the lookahead,
            # not by the window: the window is for records the target has not taken yet.
            room = self.max_buffered - (self._buffered - self._waiting)
            # Full for a moment (a burst): just stop reading; librdkafka's prefetch queue is
            # bounded. Full for long (slow or dead target): pause the partitions so polling
            # can go on (group membership, rebalances) without reading records.
            if room <= 0:
                full_since = full_since or time.monotonic()
                if not self._paused and time.monotonic() - full_since > _PAUSE_AFTER_S:
                    self._pause()
            else:
                full_since = None
                if self._paused and self._buffered - self._waiting <= self.max_buffered // 2:
                    self._resume()
            messages = []
            if room > 0 or self._paused:
                try:
                    messages = self._consumer.consume(max(1, min(500, room)), 0)
                except KafkaException as exc:
                    log.warning("consume failed: %s", exc)
            if self._repause and self._paused:
                self._repause = False
                self._consumer.pause(self._consumer.assignment())
            for msg in messages:
                self._accept(msg)
            now = time.monotonic()
            if self._held_until:
                self._release_held(now)
            if now >= next_commit:
                self._commit()
                next_commit = now + interval
            self._m_buffered.set(self._buffered)
            if messages:
                idle = 0.001
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(idle)
                idle = min(idle * 2, 0.005)

    def _accept(self, msg: Any) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != RdKafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", err)
            return
        tp = (msg.topic(), msg.partition())
        gen = self._gen.get(tp)
        if gen is None:  # assigned before our callback ran (should not happen)
            gen = self._gen[tp] = 0
            self._tracker.assign(tp)
        item = _Item(tp, msg.offset(), gen, msg.key(), msg.value() or b"")
        self._tracker.add(tp, item.offset)
        try:
            item.env = decode(item.value)
        except EnvelopeError as exc:
            item.error = exc
        parked = self._parked.get(tp)
        if parked is not None:  # the partition is held: keep its order, send later
            self._park(tp, parked, item)
            return
        self._dispatch(item)

    def _dispatch(self, item: _Item) -> None:
        """Hand a record to its key's lane (a task per key while the key has work)."""
        self._buffered += 1
        tp = item.tp
        lane_key = (tp[1], item.key if item.key is not None else ("offset", item.offset))
        lane = self._lanes.get(lane_key)
        if lane is not None:
            lane.append(item)
        else:
            lane = self._lanes[lane_key] = deque((item,))
            task = asyncio.create_task(self._run_lane(lane_key, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.pacer.speed is not None and item.env is not None:
            self._hold_if_ahead(tp, item.env.ts)

    async def _run_lane(self, lane_key: tuple[int, Any], lane: deque[_Item]) -> None:
        """Deliver one key's records in order; the lane disappears when it runs dry."""
        try:
            while lane:
                item = lane[0]
                if self._owns(item):
                    await self._handle(item)
                lane.popleft()
                self._buffered -= 1
        finally:
            if self._lanes.get(lane_key) is lane:
                del self._lanes[lane_key]

    async def _handle(self, item: _Item) -> None:
        rs = self.settings.replayer
        if item.error is not None or item.env is None:
            reason = item.error.reason if item.error else "not-envelope"
            self.metrics.failed.labels(self.target, reason).inc()
            self._to_dlq(item, reason, str(item.error), 0)
            return
        env = item.env
        blocked = self.rewriter.blocked(env)
        if blocked is not None:
            self.metrics.skipped.labels(self.target, blocked).inc()
            self._publish(item, self._result(env, Delivery(error_kind="blocked", error=blocked)))
            return
        if self.pacer.speed is not None:
            self._waiting += 1
            try:
                await self.pacer.wait(env.ts)
            finally:
                self._waiting -= 1
        if self.bucket is not None:
            await self.bucket.acquire()
        out = self.rewriter.rewrite(env)
        async with self._sem:
            if not self._owns(item):
                return  # revoked while it waited for a slot: its new owner sends it
            self._m_in_flight.inc()
            try:
                assert self._sender is not None
                delivery = await deliver(self._sender, out, self.policy, on_retry=self._on_retry)
            finally:
                self._m_in_flight.dec()
        if delivery.failed or delivery.error_kind:
            self.metrics.failed.labels(self.target, delivery.error_kind).inc()
            self._to_dlq(item, delivery.error_kind, delivery.error, delivery.attempts)
        else:
            status_class = (delivery.status or 0) // 100
            counter = self._m_delivered.get(status_class)
            if counter is None:
                counter = self.metrics.delivered.labels(self.target, f"{status_class}xx")
                self._m_delivered[status_class] = counter
            counter.inc()
            self._m_latency.observe(delivery.duration_ms / 1000)
        if rs.results:
            self._publish(item, self._result(env, delivery))
        elif not item.acks:
            self._finish(item)

    def _on_retry(self, reason: str) -> None:
        self.metrics.retries.labels(self.target, reason).inc()

    def _result(self, env: Envelope, d: Delivery) -> results.Result:
        return results.Result.of(
            d,
            id=env.id,
            target=self.target,
            group=self.settings.replayer.group,
            ts=time.time_ns() // 1_000_000,
            method=env.method,
            path=env.path,
            incomplete=incomplete(env) or "",
        )

    # -- output and bookkeeping ---------------------------------------------------------

    def _publish(self, item: _Item, result: results.Result) -> None:
        if not self.settings.replayer.results:
            if not item.acks:
                self._finish(item)
            return
        self._produce(item, self.settings.topics.results, results.encode(result), None)

    def _to_dlq(self, item: _Item, reason: str, error: str, attempts: int) -> None:
        letter = dlq.DeadLetter(
            dlq.REPLAYER,
            reason,
            error,
            item.tp[0],
            item.tp[1],
            item.offset,
            target=self.target,
            group=self.settings.replayer.group,
            attempts=attempts,
        )
        self._produce(item, self.settings.topics.dlq, item.value, dlq.headers(letter))

    def _produce(
        self, item: _Item, topic: str, value: bytes, headers: list[tuple[str, bytes]] | None
    ) -> None:
        item.acks += 1
        self._unacked += 1
        key = item.env.id.encode() if item.env is not None else item.key

        def acked(err: Any, _msg: Any) -> None:
            if err is not None:
                log.warning("could not write to %s (%s); retrying", topic, err)
                self._unacked -= 1
                item.acks -= 1
                self._produce(item, topic, value, headers)
                return
            self._unacked -= 1
            item.acks -= 1
            if item.acks == 0:
                self._finish(item)

        while True:
            try:
                self._producer.produce(topic, value, key=key, headers=headers, on_delivery=acked)
                return
            except BufferError:  # local queue full: serve delivery reports, then retry
                self._producer.poll(0.05)

    def _owns(self, item: _Item) -> bool:
        """The record's partition is still assigned as it was when the record was read."""
        return self._gen.get(item.tp) == item.gen

    def _finish(self, item: _Item) -> None:
        if self._owns(item):
            self._tracker.done(item.tp, item.offset)
        self.delivered += 1

    def _commit(self, sync: bool = False, only: list[TP] | None = None) -> bool:
        """Commit finished positions: on the timer, those not sent yet (asynchronously);
        ``sync``, every one the group has not acknowledged. Return False if refused."""
        offsets = self._tracker.to_commit(only, unacknowledged=sync)
        if not offsets or self._consumer is None:
            return True
        try:
            answer = self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for t, p, o in offsets], asynchronous=not sync
            )
        except KafkaException as exc:
            log.warning("commit failed: %s", exc)
            return False
        self._tracker.sent(offsets)
        self.metrics.commits.inc()
        if not sync:
            return True
        refused = [p for p in answer or () if p.error is not None]
        if refused:
            log.warning("commit failed: %s", refused[0].error)
            return False
        self._tracker.acknowledged(offsets)
        return True

    def _pause(self) -> None:
        self._paused = True
        with contextlib.suppress(KafkaException):
            self._consumer.pause(self._consumer.assignment())

    def _resume(self) -> None:
        self._paused = False
        with contextlib.suppress(KafkaException):
            self._consumer.resume(
                [
                    p
                    for p in self._consumer.assignment()
                    if (p.topic, p.partition) not in self._park_paused
                ]
            )

    def _hold_if_ahead(self, tp: TP, ts: int) -> None:
        """Paced replay: park a partition's records that are not due for a while.

        Partitions are read in batches of up to 500 records; without this, one partition's
        future records fill the window while another's due records wait unread, and
        arrivals drift by seconds. Parked records stay in order and are tracked, so commits
        never pass them. Reading goes on (so a resumed fetch never delays a due record)
        until a partition has ``_PARK_MAX`` parked records; then it is paused.
        """
        ahead = self.pacer.delay(ts)
        if ahead > _LOOKAHEAD_S and tp not in self._parked:
            self._parked[tp] = deque()
            self._held_until[tp] = time.monotonic() + ahead

    def _park(self, tp: TP, parked: deque[_Item], item: _Item) -> None:
        parked.append(item)
        if len(parked) >= _PARK_MAX and tp not in self._park_paused:
            self._park_paused.add(tp)
            with contextlib.suppress(KafkaException):
                self._consumer.pause([TopicPartition(tp[0], tp[1])])

    def _release_held(self, now: float) -> None:
        for tp, until in list(self._held_until.items()):
            if until - now >= _LOOKAHEAD_S / 2:
                continue
            parked = self._parked.pop(tp)
            del self._held_until[tp]
            while parked:
                self._dispatch(parked.popleft())
                if tp in self._parked:  # held again: the rest waits in order
                    self._parked[tp].extend(parked)
                    break
            left = len(self._parked.get(tp, ()))
            if tp in self._park_paused and left < _PARK_MAX // 2:
                self._park_paused.discard(tp)
                if not self._paused:
                    with contextlib.suppress(KafkaException):
                        self._consumer.resume([TopicPartition(tp[0], tp[1])])

    async def _drain(self, timeout: float) -> None:
        """Stop reading; give lanes and pending acks ``timeout`` seconds to finish."""
        with contextlib.suppress(KafkaException):
            self._consumer.pause(self._consumer.assignment())
        deadline = time.monotonic() + timeout
        while (self._lanes or self._unacked) and time.monotonic() < deadline:
            self._producer.poll(0.005)
            await asyncio.sleep(0.005)
        if self._lanes:
            log.warning("drain deadline: %d records unfinished, sent again later", self._buffered)

    # -- librdkafka callbacks (run inside consume(), on the loop thread) -----------------

    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._recommit([(p.topic, p.partition) for p in partitions])
        for p in partitions:
            tp = (p.topic, p.partition)
            self._gen[tp] = self._gen.get(tp, 0) + 1
            self._tracker.assign(tp)
        if self._paused:
            self._repause = True
        log.info("assigned %s", [p.partition for p in partitions])

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        # Records whose results are on their way to Kafka are finished by their delivery
        # reports: committed with the rest rather than sent again by the new owner.
        self._producer.flush(_REVOKE_FLUSH_S)
        if not self._commit(sync=True, only=tps):
            self._keep_for_recommit(tps)
        self._forget(tps)
        log.info("revoked %s", [p.partition for p in partitions])

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        # The group already gave these away (the session timed out): no commit is possible
        # until this worker joins again.
        tps = [(p.topic, p.partition) for p in partitions]
        self._keep_for_recommit(tps)
        self._forget(tps)
        log.warning("lost %s", [p.partition for p in partitions])

    def _keep_for_recommit(self, tps: list[TP]) -> None:
        for topic, partition, offset in self._tracker.to_commit(tps, unacknowledged=True):
            self._recommits[(topic, partition)] = offset

    def _recommit(self, tps: list[TP]) -> None:
        """Commit, for partitions assigned back to this worker, positions the group refused.

        Only where the group's committed offset is still behind: everything before such a
        position was finished here, so its records need not be sent again. Positions kept
        for partitions that went elsewhere are dropped.
        """
        kept, self._recommits = self._recommits, {}
        mine = [TopicPartition(*tp, offset) for tp, offset in kept.items() if tp in tps]
        if not mine:
            return
        try:
            theirs = {
                (p.topic, p.partition): p.offset
                for p in self._consumer.committed(
                    [TopicPartition(p.topic, p.partition) for p in mine], timeout=10
                )
            }
            ahead = [p for p in mine if p.offset > theirs.get((p.topic, p.partition), -1)]
            if ahead:
                self._consumer.commit(offsets=ahead, asynchronous=False)
        except KafkaException as exc:
            log.warning("could not commit again what was finished before the rebalance: %s", exc)
            return
        for p in ahead:
            log.info(
                "%s[%d]: committed %d again after the rebalance", p.topic, p.partition, p.offset
            )

    def _forget(self, tps: list[TP]) -> None:
        for tp in tps:
            self._tracker.revoke(tp)
            self._parked.pop(tp, None)
            self._held_until.pop(tp, None)
            self._park_paused.discard(tp)
            self._gen[tp] = self._gen.get(tp, 0) + 1
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(tp[0], str(tp[1]))

    def _on_commit(self, err: Any, partitions: list[TopicPartition]) -> None:
        offsets = [(p.topic, p.partition, p.offset) for p in partitions]
        if err is None:
            self._tracker.acknowledged(offsets)
            return
        log.warning("offset commit failed: %s", err)
        self._tracker.refused(offsets)  # the next timer sends them again
        for topic, partition, offset in offsets:
            tp = (topic, partition)
            if not self._tracker.owns(tp):  # revoked meanwhile: once it is assigned back
                self._recommits[tp] = max(offset, self._recommits.get(tp, -1))

    def _on_stats(self, text: str) -> None:
        with contextlib.suppress(Exception):
            stats = orjson.loads(text)
            for topic, info in stats.get("topics", {}).items():
                for pid, part in info.get("partitions", {}).items():
                    lag = part.get("consumer_lag", -1)
                    if int(pid) >= 0 and lag >= 0 and self._tracker.owns((topic, int(pid))):
                        self.metrics.lag.labels(topic, pid).set(lag)


def run_replayer(
    settings: Settings,
    *,
    target: str | None = None,
    group: str | None = None,
    client_factory: Callable[[], httpx.AsyncClient] | None = None,
) -> int:
    """Run one worker until SIGTERM/SIGINT; return the exit status. The CLI calls this."""
    overrides: dict[str, Any] = {}
    if target:
        overrides["target"] = target
    if group:
        overrides["group"] = group
    if overrides:
        settings = replace(settings, replayer=replace(settings.replayer, **overrides))

    async def main() -> None:
        client = client_factory() if client_factory else None
        replayer = Replayer(settings, client)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, replayer.stop)
        log.info(
            "replaying %s to %s as group %s",
            settings.topics.mirror,
            replayer.rewriter.target.origin,
            settings.replayer.group,
        )
        try:
            await replayer.run()
        finally:
            if client is not None:
                await client.aclose()

    try:
        _run(main())
    except KafkaException as exc:
        raise BrokerError(f"replayer: {exc}") from exc
    return 0


def _run(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (the ``replayer`` extra): about 1.7× the deliveries per core."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)
