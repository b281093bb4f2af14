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
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from shadowtap import compacted
from shadowtap.clock import now_ms
from shadowtap.config import KafkaSettings, Settings
from shadowtap.diff.rules import Rules
from shadowtap.diff.run import DiffRun, Roles
from shadowtap.diff.stage import DiffStage
from shadowtap.diff.summary import Summary
from shadowtap.errors import ConfigError
from shadowtap.kafka import TopicSpec, create_topics, produce

log = logging.getLogger("shadowtap.diff")

VERSION = 1
MAX_STATE_BYTES = 32 * 1024 * 1024
_HOUR_MS = 3_600_000


def spec(settings: Settings) -> TopicSpec:
    topics = settings.topics
    return TopicSpec(
        topics.diff_states,
        1,
        topics.replication_factor,
        int(topics.diffs_retention_hours * _HOUR_MS),
        compacted=True,
        max_message_bytes=MAX_STATE_BYTES,
    )


def ensure_topic(settings: Settings) -> None:
    create_topics(settings, specs=[spec(settings)])


def producer_options() -> dict[str, Any]:
    """librdkafka settings of a producer that writes states."""
    return {"message.max.bytes": MAX_STATE_BYTES, "compression.type": "zstd"}


class Publisher:
    """Writes one worker's state under its key, every ``every_s`` (also when nothing changed:
    a fresh state says the worker is alive); never waited for in the loop but at the end."""

    def __init__(
        self, settings: Settings, run: str, key: str, producer: Any, every_s: float
    ) -> None:
        self.topic = settings.topics.diff_states
        self.run = run
        self.key = key
        self.producer = producer
        self.every_s = every_s  # how often the worker publishes

    def publish(self, stage: DiffStage, waiting: int, *, final: bool = False) -> None:
        """Write the stage's state (with ``waiting``, the records its partitions hold for a
        target); ``final``: the worker stops, and waits for the broker. What its
        partitions hold then is the next owner's to report: a final state says 0."""
        value = encode(self.run, self.key, stage, 0 if final else waiting, self.every_s)
        if len(value) > MAX_STATE_BYTES:
            log.error(
                "the diff state is %d bytes, over %d: not written", len(value), MAX_STATE_BYTES
            )
        else:
            produce(self.producer, self.topic, value, self.key.encode(), on_delivery=_acked)
        self.producer.poll(0)
        if final:
            left = self.producer.flush(15)
            if left:
                log.warning("%d diff records were not acknowledged as the worker stopped", left)


def encode(run: str, key: str, stage: DiffStage, waiting: int, every_s: float) -> bytes:
    return orjson.dumps(
        {
            "v": VERSION,
            "run": run,
            "worker": key,
            "at": now_ms(),
            "every_s": every_s,
            "targets": list(stage.targets),
            "read": stage.read,
            "bad": stage.bad,
            "skipped": stage.skipped,
            "waiting": waiting,
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
    # A worker that crashed left its last count of waiting records: those are counted by
    # the worker that owns its partitions now, so only states as fresh as the newest count.
    newest = max(int(r["at"]) for r in records)
    waiting = sum(
        int(r["waiting"]) for r in records if int(r["at"]) >= newest - 3_000 * r["every_s"]
    )
    return run.summary(goals=goals, redeliveries=dict(redeliveries), waiting=waiting)


def _acked(err: Any, _msg: Any) -> None:
    if err is not None:
        log.warning("a diff state was not written: %s", err)
