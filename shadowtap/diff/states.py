"""Diff workers' counters on a compacted topic, merged into one summary by the report.

Each ``shadowtap diff serve`` worker (shadowtap.diff.worker) publishes its run's raw
counters (``DiffRun.state()``) with its pairing figures, keyed ``<run>/<worker id>``, every
few seconds and as it stops; compaction keeps the latest of each worker. ``shadowtap diff
report --run NAME`` sums every worker's state of that run (``DiffRun.merge``) and only then
judges fields and computes rates, so three-way verdicts are made on the whole traffic, not
averaged per worker::

    publisher = Publisher(settings, "v2-rollout", "v2-rollout/3f2a…", producer)
    publisher.publish(stage)                               # in the worker
    summary = merged_summary(load(settings.kafka, settings.topics.diff_states, "v2-rollout"),
                             rules, goals=["mismatch<=0.5%"])

A state is bounded by the run's Limits, compressed (zstd) and allowed up to
``MAX_STATE_BYTES`` on the topic; one larger than that is not written, and the worker says so.
Each state also says how many records wait for a target in each partition the worker owns
(or owned until a rebalance, or its end), and when it counted them: the report adds up each
partition's newest count.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from confluent_kafka import KafkaException

from shadowtap import compacted
from shadowtap.clock import now_ms
from shadowtap.config import KafkaSettings, Settings
from shadowtap.diff.rules import Rules
from shadowtap.diff.run import DiffRun, Roles
from shadowtap.diff.stage import DiffStage
from shadowtap.diff.summary import Summary
from shadowtap.errors import BrokerError, ConfigError
from shadowtap.kafka import TopicSpec, create_topics, produce

log = logging.getLogger("shadowtap.diff")

VERSION = 1
MAX_STATE_BYTES = 32 * 1024 * 1024


def spec(settings: Settings) -> TopicSpec:
    """Compacted and kept (no time retention): a stopped worker's last state still counts,
    and its records are done, never compared again."""
    topics = settings.topics
    return TopicSpec(
        topics.diff_states,
        1,
        topics.replication_factor,
        -1,
        compacted=True,
        max_message_bytes=MAX_STATE_BYTES,
    )


def ensure_topic(settings: Settings) -> None:
    create_topics(settings, specs=[spec(settings)])


def producer_options() -> dict[str, Any]:
    """librdkafka settings of a producer that writes states."""
    return {"message.max.bytes": MAX_STATE_BYTES, "compression.type": "zstd"}


class Publisher:
    """Writes one worker's state under its key (every few seconds, and as it stops)."""

    def __init__(self, settings: Settings, run: str, key: str, producer: Any) -> None:
        self.kafka = settings.kafka
        self.topic = settings.topics.diff_states
        self.run = run
        self.key = key
        self.producer = producer

    def publish(
        self, stage: DiffStage, waiting: Mapping[int, tuple[int, int]], *, final: bool = False
    ) -> None:
        """Write the stage's state, with ``waiting``: ``{partition: (records waiting for a
        target, when counted)}``. ``final``: the worker stops; wait for the acknowledgement.
        A state too large to write is logged, never raised: the worker goes on."""
        value = encode(self.run, self.key, stage, waiting)
        if len(value) > MAX_STATE_BYTES:
            log.error(
                "the diff state is %d bytes, over %d: not written", len(value), MAX_STATE_BYTES
            )
            return
        try:
            if final:
                compacted.save(
                    self.kafka,
                    self.topic,
                    self.key,
                    value,
                    what="diff state",
                    producer=self.producer,
                )
            else:
                produce(self.producer, self.topic, value, self.key.encode(), on_delivery=_acked)
                self.producer.poll(0)
        except (BrokerError, KafkaException) as exc:
            log.error("the diff state was not written: %s", exc)


def encode(run: str, key: str, stage: DiffStage, waiting: Mapping[int, tuple[int, int]]) -> bytes:
    return orjson.dumps(
        {
            "v": VERSION,
            "run": run,
            "worker": key,
            "at": now_ms(),
            "targets": list(stage.targets),
            "read": stage.read,
            "bad": stage.bad,
            "skipped": stage.skipped,
            "waiting": {str(p): [n, at] for p, (n, at) in waiting.items()},
            "redeliveries": dict(stage.redeliveries),
            "state": stage.diff_run.state(),
        }
    )


def load(kafka: KafkaSettings, topic: str, run: str) -> list[dict[str, Any]]:
    """The latest state of every worker of ``run``."""
    out = []
    for key, value in compacted.load(kafka, topic).items():
        if key.startswith(f"{run}/"):
            record = orjson.loads(value)
            if record.get("v") == VERSION:
                out.append(record)
    return out


def merged_summary(
    records: Sequence[dict[str, Any]], rules: Rules, goals: Sequence[Any] = ()
) -> Summary:
    """One summary of every worker's counters; ConfigError when there are none."""
    if not records:
        raise ConfigError(
            "no diff worker has published a state for this run yet: start `shadowtap diff "
            "serve --run NAME` (states are written every few seconds)"
        )
    first = records[0]["state"]
    roles = Roles(**first["roles"]) if first.get("roles") else None
    run = DiffRun.merged([r["state"] for r in records], rules, roles, drift=first["drift"])
    redeliveries: Counter[str] = Counter()
    for record in records:
        redeliveries.update(record.get("redeliveries", {}))
    # Each partition's waiting records as counted last, by whichever worker owned it then
    # (a worker that crashed, or stopped with no one after it, keeps its last count).
    latest: dict[str, tuple[int, int]] = {}
    for record in records:
        for partition, (n, at) in record["waiting"].items():
            if partition not in latest or at > latest[partition][1]:
                latest[partition] = (n, at)
    waiting = sum(n for n, _ in latest.values())
    return run.summary(goals=goals, redeliveries=dict(redeliveries), waiting=waiting)


def _acked(err: Any, _msg: Any) -> None:
    if err is not None:
        log.warning("a diff state was not written: %s", err)
