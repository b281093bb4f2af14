"""The replayer worker: consume ``shadowtap.mirror`` in a group and deliver to one target.

Usage::

    shadowtap replay --target https://staging.internal --group staging \
        [--bootstrap HOST:PORT] [--config shadowtap.toml] [--speed max|1x|2x|0.5x] \
        [--rate 500/s] [--max-in-flight 64] [--metrics-port 9108]

    from shadowtap.replayers.worker import Replayer, run_replayer
    run_replayer(settings)                              # blocking; SIGTERM/SIGINT drain
    await Replayer(settings, client=httpx.AsyncClient(transport=...)).run(stop_event)

This module is the consumer-group shell: it subscribes, answers assignments, revocations
and lost partitions, and commits. Everything else (lanes, the window, pacing, delivery,
results) is the engine's (shadowtap.replayers.engine), which works with any source of
records and any place to keep positions.

Run N workers with one ``group`` and Kafka spreads the partitions; another group (a DR
site) gets all the traffic again. Each worker also reads its group's retry topic
(``topics.retry_prefix`` + group, created at start if missing), where ``shadowtap dlq
redrive`` sends records that failed for this group only (shadowtap.redrive). It reads it
with a second consumer, in the group ``<group>.retry`` (shadowtap.kafka.retry_group), into
the same engine: in one group with the mirror, the assignor balances the number of
partitions over both topics, and a joining worker could take every mirror partition while
the other kept only retry partitions, idle. Each group spreads its own topic, so N workers
share the mirror's partitions as evenly as their number allows. Positions of each topic
are committed to the group that reads it; a retry group that has none yet starts where
``<group>`` left the retry topic (earlier versions read it there), not at its start.

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
  at most 2,000 per partition before that partition is paused
  (shadowtap.replayers.backpressure);
- ``incomplete`` (``skip``): a record whose request body is not all there (unread by the
  production app, cut off, over the capture limit) is not sent; ``send`` sends it without
  that body. Its result says ``incomplete`` either way (see shadowtap.replayers.rewrite);
- ``results`` (true): one result record per delivery on ``topics.results``
  (shadowtap.results) with the production response beside the target's, both bodies kept
  up to ``result_body_limit`` bytes (64 KiB, capture's limit), the target's scrubbed with
  the ``[processor]`` scrub settings and key;
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
import gc
import logging
import signal
from collections.abc import Coroutine
from typing import Any

import httpx
import orjson
from confluent_kafka import KafkaException, TopicPartition

from shadowtap.config import Settings
from shadowtap.errors import BrokerError
from shadowtap.kafka import create_topics, make_consumer, retry_group, retry_topic_spec
from shadowtap.replayers.engine import Engine
from shadowtap.replayers.lanes import TP
from shadowtap.replayers.source import ConsumerSources

log = logging.getLogger("shadowtap.replayer")

# How long a revoke waits for results on their way to Kafka (the loop waits meanwhile).
_REVOKE_FLUSH_S = 2.0


class Replayer:
    """One worker process: the engine fed by a consumer of the mirror in ``replayer.group``
    and one of its retry topic in ``<group>.retry``, positions committed to each's group."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.engine = Engine(settings, client)  # an injected client is the caller's to close
        self.metrics = self.engine.metrics
        # Records ``shadowtap dlq redrive`` sends back to this group only (see
        # shadowtap.redrive); read beside the mirror topic, in a group of their own.
        self.retry_topic = settings.topics.retry(settings.replayer.group)
        self.retry_group = retry_group(settings.replayer.group)
        self._tracker = self.engine.tracker
        # Finished positions the group refused, for partitions no longer assigned here.
        self._recommits: dict[TP, int] = {}
        self._consumers: dict[str, Any] = {}  # topic: the consumer (and group) reading it
        self.source: ConsumerSources | None = None
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Ask the loop to drain and exit (safe from a signal handler in the loop)."""
        self._stop.set()

    def attach(self, consumer: Any, retry: Any | None = None) -> None:
        """Read the mirror from ``consumer`` and the retry topic from ``retry`` (``run``
        makes both, each in its group)."""
        self._consumers = {self.settings.topics.mirror: consumer}
        if retry is not None:
            self._consumers[self.retry_topic] = retry
        self.source = ConsumerSources(self._consumers)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume and deliver until ``stop`` (or :meth:`stop`), then drain and commit."""
        if stop is not None:
            self._stop = stop
        rs = self.settings.replayer
        consumer = self._make_consumer(rs.group)
        retry = self._make_consumer(self.retry_group)
        self.attach(consumer, retry)
        assert self.source is not None
        await self.engine.open()
        server = self.metrics.serve(rs.metrics_port) if rs.metrics_port else None
        try:
            retry_spec = retry_topic_spec(self.settings.topics, rs.group)
            await asyncio.to_thread(create_topics, self.settings, specs=[retry_spec])
            await asyncio.to_thread(self._carry_over_retry_positions, consumer, retry)
            for topic, reader in self._consumers.items():
                reader.subscribe(
                    [topic],
                    on_assign=self._on_assign,
                    on_revoke=self._on_revoke,
                    on_lost=self._on_lost,
                )
            await self.engine.pump(self.source, self._stop, self._commit, rs.commit_interval_s)
            await self.engine.drain(self.source, rs.drain_timeout_s)
        finally:
            await self.engine.stop()
            self._commit(sync=True)
            for reader in self._consumers.values():
                with contextlib.suppress(Exception):
                    reader.close()
            await self.engine.close()
            if server is not None:
                server.shutdown()
                server.server_close()

    def _make_consumer(self, group: str) -> Any:
        rs = self.settings.replayer
        return make_consumer(
            self.settings.kafka,
            group,
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

    def _carry_over_retry_positions(self, consumer: Any, retry: Any) -> None:
        """A retry group with no positions yet starts where ``replayer.group`` left the
        retry topic (earlier versions read it in that group), rather than at its start:
        that would send every redriven record the topic still keeps again."""
        try:
            meta = retry.list_topics(self.retry_topic, timeout=10).topics[self.retry_topic]
            parts = [TopicPartition(self.retry_topic, p) for p in meta.partitions]
            if any(p.offset >= 0 for p in retry.committed(parts, timeout=10)):
                return
            left = [p for p in consumer.committed(parts, timeout=10) if p.offset >= 0]
            if left:
                retry.commit(offsets=left, asynchronous=False)
                log.info(
                    "group %s starts %s where group %s left it: %s",
                    self.retry_group,
                    self.retry_topic,
                    self.settings.replayer.group,
                    {p.partition: p.offset for p in left},
                )
        except KafkaException as exc:  # say, another worker carried them over first
            log.warning("could not carry the retry topic's positions over: %s", exc)

    def _commit(self, sync: bool = False, only: list[TP] | None = None) -> bool:
        """Commit finished positions, each topic's to the group reading it: on the timer,
        those not sent yet (asynchronously); ``sync``, every one the group has not
        acknowledged. Return False if refused."""
        offsets = self._tracker.to_commit(only, unacknowledged=sync)
        done = True
        for topic, consumer in self._consumers.items():
            mine = [o for o in offsets if o[0] == topic]
            if mine:
                done = self._commit_to(consumer, mine, sync) and done
        return done

    def _commit_to(self, consumer: Any, offsets: list[tuple[str, int, int]], sync: bool) -> bool:
        try:
            answer = consumer.commit(
                offsets=[self._position(t, p, o) for t, p, o in offsets], asynchronous=not sync
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

    def _position(self, topic: str, partition: int, offset: int) -> TopicPartition:
        """What is committed for a partition (a drill adds metadata: shadowtap.drill.run)."""
        return TopicPartition(topic, partition, offset)

    # -- librdkafka callbacks (run inside consume(), on the loop thread) -----------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self._recommit(consumer, tps)
        self.engine.assign(tps)
        self.engine.backpressure.source_changed()
        log.info("assigned %s", _named(tps))

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        # Records whose results are on their way to Kafka are finished by their delivery
        # reports: committed with the rest rather than sent again by the new owner.
        self.engine.outbox.flush(_REVOKE_FLUSH_S)
        if not self._commit(sync=True, only=tps):
            self._keep_for_recommit(tps)
        self._forget(tps)
        log.info("revoked %s", _named(tps))

    def _on_lost(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        # The group already gave these away (the session timed out): no commit is possible
        # until this worker joins again.
        tps = [(p.topic, p.partition) for p in partitions]
        self._keep_for_recommit(tps)
        self._forget(tps)
        log.warning("lost %s", _named(tps))

    def _keep_for_recommit(self, tps: list[TP]) -> None:
        for topic, partition, offset in self._tracker.to_commit(tps, unacknowledged=True):
            self._recommits[(topic, partition)] = offset

    def _recommit(self, consumer: Any, tps: list[TP]) -> None:
        """Commit, for partitions assigned back to this worker, positions the group refused.

        Only where the group's committed offset is still behind: everything before such a
        position was finished here, so its records need not be sent again. Positions kept
        for this consumer's partitions that went elsewhere are dropped.
        """
        # Each consumer (the mirror's group, the retry topic's) is assigned on its own: only
        # this one's topics are settled here, the other's positions stay kept.
        topics = {topic for topic, _ in tps}
        kept = {tp: o for tp, o in self._recommits.items() if tp[0] in topics}
        self._recommits = {tp: o for tp, o in self._recommits.items() if tp[0] not in topics}
        mine = [TopicPartition(*tp, offset) for tp, offset in kept.items() if tp in tps]
        if not mine:
            return
        try:
            theirs = {
                (p.topic, p.partition): p.offset
                for p in consumer.committed(
                    [TopicPartition(p.topic, p.partition) for p in mine], timeout=10
                )
            }
            ahead = [p for p in mine if p.offset > theirs.get((p.topic, p.partition), -1)]
            if ahead:
                consumer.commit(offsets=ahead, asynchronous=False)
        except KafkaException as exc:
            log.warning("could not commit again what was finished before the rebalance: %s", exc)
            return
        for p in ahead:
            log.info(
                "%s[%d]: committed %d again after the rebalance", p.topic, p.partition, p.offset
            )

    def _forget(self, tps: list[TP]) -> None:
        self.engine.revoke(tps)
        for tp in tps:
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


def _named(tps: list[TP]) -> str:
    """``mirror[0, 2] shadowtap.retry.staging[1]``: partitions by topic, for the log."""
    topics: dict[str, list[int]] = {}
    for topic, partition in tps:
        topics.setdefault(topic, []).append(partition)
    return " ".join(f"{t}{sorted(ps)}" for t, ps in topics.items()) or "[]"


def run_replayer(settings: Settings) -> int:
    """Run one worker until SIGTERM/SIGINT; return the exit status. The CLI calls this."""

    async def main() -> None:
        replayer = Replayer(settings)
        # What start-up loaded (the results' scrubber: Presidio's recognizers) lives as long
        # as the process: the collector need not walk it again on every full collection.
        gc.freeze()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, replayer.stop)
        log.info(
            "replaying %s to %s as group %s",
            settings.topics.mirror,
            replayer.engine.rewriter.target.origin,
            settings.replayer.group,
        )
        await replayer.run()

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
