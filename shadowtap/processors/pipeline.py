"""The processor's stages composed over one Kafka record, with no Kafka in sight.

decode → filter → sample → dedup → scrub → route. The agent's batches
(shadowtap.processors.batches) feed records in and send each ``Outcome`` where it says; tests
and benchmarks call ``Pipeline.process`` directly. A record is never lost and never raises:
it is either sent (``kind="out"``), dropped for a counted reason (``kind="drop"``:
``health-path``, ``probe-agent``, ``sampled-out``, ``rate-capped``, ``duplicate``,
``unrouted``), or sent to the DLQ (``kind="dlq"``: the EnvelopeError reason,
``scrub-failed`` or ``internal-error``).

What each stage did goes into ``meta`` of the output envelope::

    {"filter": "pass", "sampled": {"percent": 100.0, "by": "id"},
     "dedup_key": "9f…", "scrubbed": {"EMAIL_ADDRESS": 1, "field": 2}, "route": "shadowtap.mirror"}
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from shadowtap import dlq
from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode, encode, kafka_headers, kafka_timestamp
from shadowtap.errors import EnvelopeError, ScrubError
from shadowtap.processors.dedup import MemorySeen, SeenStore, check_fields, fingerprint
from shadowtap.processors.filters import ProbeFilter
from shadowtap.processors.routing import Router
from shadowtap.processors.sampling import Sampler
from shadowtap.scrub.scrubber import Scrubber


@dataclass(slots=True)
class Outcome:
    """What became of one record."""

    kind: Literal["out", "drop", "dlq"]
    reason: str = ""
    topic: str | None = None
    value: bytes = b""
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    entities: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    ts: int = 0  # the record's capture time (epoch ms): its output's Kafka timestamp


class Pipeline:
    """Every stage, built once from settings; ``seen`` is the dedup memory."""

    def __init__(self, settings: Settings, seen: SeenStore | None = None) -> None:
        p = settings.processor
        check_fields(p.dedup_fields)
        self.settings = settings
        self.probe = ProbeFilter.from_settings(p)
        self.sampler = Sampler.from_settings(p)
        self.seen: SeenStore | None = (
            (seen if seen is not None else MemorySeen(p.dedup_window_s, p.dedup_max_keys))
            if p.dedup_enabled
            else None
        )
        self.scrubber = Scrubber.from_settings(p)
        self.router = Router(p.routes, settings.topics.mirror)
        self._fields = p.dedup_fields
        self._max_age_ms = settings.topics.mirror_retention_hours * 3_600_000
        self._sample_meta = {"percent": p.sample_percent, "by": p.sample_by}

    def process(self, value: bytes | None, key: bytes | None = None) -> Outcome:
        """Run every stage on one record value; never raises."""
        started = self.front(value, key)
        return started if isinstance(started, Outcome) else self.back(*started)

    def front(
        self, value: bytes | None, key: bytes | None = None
    ) -> Outcome | tuple[Envelope, dict[str, float]]:
        """decode → filter → sample → dedup: the record's Outcome if it stops here, else its
        envelope and timings for ``back``. Cheap; dedup needs the worker's table."""
        timings: dict[str, float] = {}
        t = time.perf_counter()
        try:
            env = decode(value if value is not None else b"")
        except EnvelopeError as exc:
            return Outcome("dlq", exc.reason, error=str(exc))
        except Exception as exc:  # orjson or a bug: the record still must not stop the worker
            return Outcome("dlq", "internal-error", error=repr(exc))
        t = _lap(timings, "decode", t)
        try:
            stopped = self._front_stages(env, key, timings, t)
        except Exception as exc:
            return Outcome("dlq", "internal-error", error=repr(exc), timings=timings)
        return stopped if stopped is not None else (env, timings)

    def back(self, env: Envelope, timings: dict[str, float]) -> Outcome:
        """scrub → route → encode: most of a record's cost, and needing nothing but ``env``
        (shadowtap.processors.parallel runs it in other processes). Never raises."""
        t = time.perf_counter()
        try:
            return self._back_stages(env, timings, t)
        except ScrubError as exc:
            return Outcome("dlq", "scrub-failed", error=str(exc), timings=timings)
        except Exception as exc:
            return Outcome("dlq", "internal-error", error=repr(exc), timings=timings)

    def _front_stages(
        self,
        env: Envelope,
        key: bytes | None,
        timings: dict[str, float],
        t: float,
    ) -> Outcome | None:
        meta = env.meta
        reason = self.probe.drop_reason(env)
        t = _lap(timings, "filter", t)
        if reason:
            return Outcome("drop", reason, timings=timings)
        meta["filter"] = "pass"
        reason = self.sampler.drop_reason(env, key)
        t = _lap(timings, "sample", t)
        if reason:
            return Outcome("drop", reason, timings=timings)
        meta["sampled"] = self._sample_meta
        if self.seen is not None:
            fp = fingerprint(env, self._fields)
            duplicate = self.seen.check_and_add(fp, env.id, env.ts)
            _lap(timings, "dedup", t)
            if duplicate:
                return Outcome("drop", "duplicate", timings=timings)
            meta["dedup_key"] = fp
        return None

    def _back_stages(self, env: Envelope, timings: dict[str, float], t: float) -> Outcome:
        entities = self.scrubber.scrub(env)
        t = _lap(timings, "scrub", t)
        env.meta["scrubbed"] = entities
        topic = self.router.topic_for(env)
        if topic is None:
            _lap(timings, "route", t)
            return Outcome("drop", "unrouted", timings=timings, entities=entities)
        env.meta["route"] = topic
        value = encode(env)
        _lap(timings, "route", t)
        return Outcome(
            "out",
            topic=topic,
            value=value,
            headers=kafka_headers(env),
            entities=entities,
            timings=timings,
            ts=kafka_timestamp(env.ts, self._max_age_ms),
        )


def _lap(timings: dict[str, float], stage: str, start: float) -> float:
    now = time.perf_counter()
    timings[stage] = now - start
    return now


def dlq_headers(
    outcome: Outcome, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Kafka headers that say why a record is in the DLQ and where it came from."""
    return dlq.headers(
        dlq.DeadLetter(dlq.PROCESSOR, outcome.reason, outcome.error, topic, partition, offset)
    )
