"""Reading the dead-letter topic for operators: ``shadowtap dlq list|stats|show``.

Usage::

    shadowtap dlq stats [--since 24h] [--json]
    shadowtap dlq list  [--reason R] [--stage processor|replayer] [--group G] [--since T]
                        [--limit 50] [--json]
    shadowtap dlq show ID [--show-sensitive] [--json]
    shadowtap dlq redrive --reason R …          (see shadowtap.redrive)

``stats`` counts records by stage, reason and replayer group, with their ages (under an
hour, a day, a week, older) and how many were redriven. ``list`` shows the newest records,
one line each. ``show`` takes a DLQ record's ``partition:offset`` (as ``list`` prints it) or
a record id (every DLQ record of that request: it may have failed in several groups) and
prints why it failed, where it came from and, for a replayer-stage record, its target and
group. ``--since`` takes an age (``90s``, ``30m``, ``2h``, ``7d``) or an ISO 8601 time
(``2024-11-24T10:00:00+00:00``; without a zone it is UTC).

What is shown: a processor-stage record is the captured request before scrubbing, so by
default ``show`` prints only what cannot be personal (its id, time, source, method, host,
sizes, header names, response status) and hides its path, query, header values, bodies,
client address, meta and the error message (which may quote the record); they appear only
with ``--show-sensitive``. A replayer-stage record comes from the mirror topic, which holds
scrubbed data only, and is shown whole. A record without a stage is treated as sensitive.

Records are read from the topic as it is when the command starts (each partition up to its
end offset then); nothing is committed and no consumer group is joined.
"""

from __future__ import annotations

import base64
import heapq
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, TopicPartition

from shadowtap import dlq
from shadowtap.config import KafkaSettings, Settings
from shadowtap.envelope import Envelope, decode
from shadowtap.errors import ConfigError, EnvelopeError, KafkaError
from shadowtap.kafka import make_consumer

# A consumer group id is required by librdkafka; it is never joined (partitions are assigned).
_READER_GROUP = "shadowtap-dlq-tools"
AGE_BUCKETS = (("<1h", 3600), ("<1d", 86_400), ("<7d", 7 * 86_400), (">=7d", None))
_PREVIEW = 2000  # characters of a body shown by ``show``
# What a partition answers for a moment after its topic was created or its leader moved.
_SETTLING = frozenset(
    {
        RdKafkaError.NOT_LEADER_FOR_PARTITION,
        RdKafkaError.LEADER_NOT_AVAILABLE,
        RdKafkaError.UNKNOWN_TOPIC_OR_PART,
    }
)


@dataclass(frozen=True, slots=True)
class Letter:
    """One DLQ record: where it sits, when it was written, why, and its key and value."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    why: dlq.DeadLetter
    record_id: str = ""  # the envelope id when the value has one

    @property
    def ref(self) -> str:
        """``partition:offset``, what ``show`` takes."""
        return f"{self.partition}:{self.offset}"

    @property
    def coordinates(self) -> str:
        return dlq.coordinates(self.topic, self.partition, self.offset)

    @property
    def sensitive(self) -> bool:
        """Whether the value may hold unscrubbed production data."""
        return self.why.stage != dlq.REPLAYER


@dataclass(frozen=True, slots=True)
class Selection:
    """Which DLQ records a command works on (empty: all)."""

    reasons: frozenset[str] = frozenset()
    stage: str = ""
    group: str = ""
    since_ms: int | None = None

    def matches(self, letter: Letter) -> bool:
        why = letter.why
        return (
            (not self.reasons or why.reason in self.reasons)
            and (not self.stage or why.stage == self.stage)
            and (not self.group or why.group == self.group)
            and (self.since_ms is None or letter.timestamp_ms >= self.since_ms)
        )


# -- reading topics -----------------------------------------------------------------------


def scan(
    kafka: KafkaSettings,
    topic: str,
    *,
    since_ms: int | None = None,
    starts: dict[int, int] | None = None,
    partitions: Iterable[int] | None = None,
    timeout_s: float = 15.0,
) -> Iterator[Any]:
    """Every record of ``topic`` up to each partition's end offset when called.

    From the beginning, or from the first record at or after ``since_ms``, or from
    ``starts[partition]``. Raises KafkaError when the topic does not exist or reading stalls
    for ``timeout_s``.
    """
    consumer = make_consumer(kafka, _READER_GROUP, {"enable.partition.eof": True})
    try:
        ends = _ends(consumer, topic, timeout_s)
        wanted = sorted(ends if partitions is None else set(partitions) & set(ends))
        begins = {p: _watermarks(consumer, topic, p, timeout_s)[0] for p in wanted}
        if starts is not None:
            begins = {p: max(begins[p], starts.get(p, begins[p])) for p in wanted}
        if since_ms is not None and wanted:
            found = consumer.offsets_for_times(
                [TopicPartition(topic, p, since_ms) for p in wanted], timeout_s
            )
            for tp in found:
                # -1: no record that new in this partition
                begins[tp.partition] = ends[tp.partition] if tp.offset < 0 else tp.offset
        pending = {p for p in wanted if begins[p] < ends[p]}
        if not pending:
            return
        consumer.assign([TopicPartition(topic, p, begins[p]) for p in sorted(pending)])
        quiet_since = time.monotonic()
        while pending:
            # consume() waits its whole timeout unless 500 records are there: keep it short
            messages: list[Any] = consumer.consume(500, 0.05)
            if not messages and time.monotonic() - quiet_since > timeout_s:
                raise KafkaError(f"reading {topic} stalled: nothing for {timeout_s:.0f}s")
            for msg in messages:
                quiet_since = time.monotonic()
                err = msg.error()
                p = msg.partition()
                if err is not None:
                    if err.code() == RdKafkaError._PARTITION_EOF:
                        pending.discard(p)
                        continue
                    raise KafkaError(f"reading {topic}[{p}]: {err}")
                if p not in pending or msg.offset() >= ends[p]:
                    pending.discard(p)
                    continue
                yield msg
                if msg.offset() >= ends[p] - 1:
                    pending.discard(p)
    except KafkaException as exc:
        raise KafkaError(f"reading {topic}: {exc}") from exc
    finally:
        consumer.close()


def end_offsets(kafka: KafkaSettings, topic: str, timeout_s: float = 15.0) -> dict[int, int]:
    """Each partition's end offset (the offset its next record will get)."""
    consumer = make_consumer(kafka, _READER_GROUP)
    try:
        return _ends(consumer, topic, timeout_s)
    except KafkaException as exc:
        raise KafkaError(f"reading the end offsets of {topic}: {exc}") from exc
    finally:
        consumer.close()


def topic_exists(kafka: KafkaSettings, topic: str, timeout_s: float = 15.0) -> bool:
    consumer = make_consumer(kafka, _READER_GROUP)
    try:
        found = consumer.list_topics(topic, timeout_s).topics.get(topic)
        return found is not None and found.error is None
    except KafkaException as exc:
        raise KafkaError(f"Kafka did not answer within {timeout_s:.0f}s: {exc}") from exc
    finally:
        consumer.close()


def _ends(consumer: Any, topic: str, timeout_s: float) -> dict[int, int]:
    found = consumer.list_topics(topic, timeout_s).topics.get(topic)
    if found is None or found.error is not None:
        raise KafkaError(f"topic {topic} does not exist (create it with `shadowtap topics create`)")
    return {p: _watermarks(consumer, topic, p, timeout_s)[1] for p in found.partitions}


def _watermarks(consumer: Any, topic: str, partition: int, timeout_s: float) -> tuple[int, int]:
    """A partition's first and end offsets, retried while a new topic's leader settles."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout_s)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            settling = error is not None and (error.code() in _SETTLING or error.retriable())
            if not settling or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def letters(settings: Settings, since_ms: int | None = None) -> Iterator[Letter]:
    """Every record of the DLQ topic (from ``since_ms``), parsed."""
    topic = settings.topics.dlq
    for msg in scan(settings.kafka, topic, since_ms=since_ms):
        yield to_letter(topic, msg)


def to_letter(topic: str, msg: Any) -> Letter:
    value: bytes = msg.value() or b""
    return Letter(
        topic=topic,
        partition=msg.partition(),
        offset=msg.offset(),
        timestamp_ms=msg.timestamp()[1],
        key=msg.key(),
        value=value,
        why=dlq.parse(msg.headers()),
        record_id=_record_id(value),
    )


def _record_id(value: bytes) -> str:
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ""
    found = raw.get("id") if isinstance(raw, dict) else None
    return found if isinstance(found, str) else ""


# -- redrive markers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Marker:
    """What ``redrive`` recorded for one DLQ record (shadowtap.redrive)."""

    state: str  # "sending" (may or may not have arrived) or "done"
    to: str
    at_ms: int
    partition: int = -1  # where it landed ("done")
    offset: int = -1
    starts: dict[int, int] = field(default_factory=dict)  # destination ends before ("sending")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "to": self.to, "at": self.at_ms}
        if self.state == "done":
            out |= {"partition": self.partition, "offset": self.offset}
        else:
            out["from"] = {str(p): o for p, o in self.starts.items()}
        return out


def markers(settings: Settings) -> dict[str, Marker]:
    """The latest marker per DLQ record of this DLQ topic, keyed by its coordinates."""
    out: dict[str, Marker] = {}
    prefix = settings.topics.dlq + ":"
    if not topic_exists(settings.kafka, settings.topics.redriven):
        return out
    for msg in scan(settings.kafka, settings.topics.redriven):
        key = (msg.key() or b"").decode("utf-8", "replace")
        if not key.startswith(prefix):
            continue
        marker = parse_marker(msg.value())
        if marker is None:
            out.pop(key, None)
        else:
            out[key] = marker
    return out


def parse_marker(value: bytes | None) -> Marker | None:
    """A marker record's value, or None for a tombstone or one this version cannot read."""
    try:
        raw = orjson.loads(value or b"")
        return Marker(
            state=str(raw["state"]),
            to=str(raw["to"]),
            at_ms=int(raw.get("at", 0)),
            partition=int(raw.get("partition", -1)),
            offset=int(raw.get("offset", -1)),
            starts={int(p): int(o) for p, o in raw.get("from", {}).items()},
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


# -- stats and list -----------------------------------------------------------------------


@dataclass(slots=True)
class Count:
    """DLQ records of one stage, reason and group."""

    stage: str
    reason: str
    group: str
    count: int = 0
    ages: dict[str, int] = field(default_factory=lambda: {b: 0 for b, _ in AGE_BUCKETS})
    oldest_ms: int = 0
    newest_ms: int = 0
    redriven: int = 0

    def add(self, letter: Letter, now_ms: int, redriven: bool) -> None:
        self.count += 1
        self.ages[age_bucket(now_ms - letter.timestamp_ms)] += 1
        ts = letter.timestamp_ms
        self.oldest_ms = min(self.oldest_ms or ts, ts)
        self.newest_ms = max(self.newest_ms, ts)
        self.redriven += redriven

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "reason": self.reason,
            "group": self.group,
            "count": self.count,
            "ages": self.ages,
            "oldest": iso(self.oldest_ms),
            "newest": iso(self.newest_ms),
            "redriven": self.redriven,
        }


def stats(
    found: Iterable[Letter], marks: dict[str, Marker], now_ms: int | None = None
) -> list[Count]:
    """Counts by stage, reason and group, most records first."""
    now_ms = now_ms if now_ms is not None else _now_ms()
    rows: dict[tuple[str, str, str], Count] = {}
    for letter in found:
        why = letter.why
        key = (why.stage, why.reason, why.group)
        row = rows.get(key)
        if row is None:
            row = rows[key] = Count(*key)
        done = marks.get(letter.coordinates)
        row.add(letter, now_ms, done is not None and done.state == "done")
    return sorted(rows.values(), key=lambda r: (-r.count, r.stage, r.reason, r.group))


def newest(found: Iterable[Letter], selection: Selection, limit: int) -> list[Letter]:
    """The ``limit`` newest records that match, newest first."""
    return heapq.nlargest(
        limit,
        (letter for letter in found if selection.matches(letter)),
        key=lambda x: (x.timestamp_ms, x.partition, x.offset),
    )


def summary(letter: Letter, marks: dict[str, Marker], now_ms: int) -> dict[str, Any]:
    """One line of ``list``: nothing from the value but the record id."""
    why = letter.why
    marker = marks.get(letter.coordinates)
    return {
        "ref": letter.ref,
        "written": iso(letter.timestamp_ms),
        "age_s": max(0, (now_ms - letter.timestamp_ms) // 1000),
        "stage": why.stage,
        "reason": why.reason,
        "group": why.group,
        "target": why.target,
        "source": why.source,
        "record_id": letter.record_id,
        "redriven": marker.state if marker is not None else "",
    }


# -- show -----------------------------------------------------------------------------------

_REF = re.compile(r"(\d+):(\d+)")


def find(settings: Settings, ident: str) -> list[Letter]:
    """The DLQ record at ``partition:offset``, or every one of record id (or key) ``ident``."""
    topic = settings.topics.dlq
    ref = _REF.fullmatch(ident.strip())
    if ref is not None:
        partition, offset = int(ref[1]), int(ref[2])
        for msg in scan(settings.kafka, topic, starts={partition: offset}, partitions=[partition]):
            return [to_letter(topic, msg)] if msg.offset() == offset else []
        return []
    wanted = ident.strip().encode()
    return [
        letter
        for letter in letters(settings)
        if letter.record_id == ident.strip() or letter.key == wanted
    ]


def describe(
    letter: Letter, marker: Marker | None, *, show_sensitive: bool, now_ms: int | None = None
) -> dict[str, Any]:
    """What ``show`` prints for one record; ``hidden`` lists what was left out and why."""
    now_ms = now_ms if now_ms is not None else _now_ms()
    why = letter.why
    reveal = show_sensitive or not letter.sensitive
    out: dict[str, Any] = {
        "dlq": letter.coordinates,
        "ref": letter.ref,
        "written": iso(letter.timestamp_ms),
        "age_s": max(0, (now_ms - letter.timestamp_ms) // 1000),
        "stage": why.stage or "unknown",
        "reason": why.reason,
        "error": why.error if reveal else None,
        "source": {
            "topic": why.source_topic,
            "partition": why.source_partition,
            "offset": why.source_offset,
        },
        "key": (letter.key or b"").decode("utf-8", "replace"),
        "record_id": letter.record_id,
        "redriven": marker.to_json() if marker is not None else None,
    }
    if why.stage == dlq.REPLAYER:
        out |= {"target": why.target, "group": why.group, "attempts": why.attempts}
    try:
        env = decode(letter.value)
    except EnvelopeError as exc:
        out["record"] = {"decodes": False, "why": exc.reason, "value_size": len(letter.value)}
        if reveal:
            out["record"]["value"] = _preview(letter.value)
        else:
            out["hidden"] = ["value", "error"]
        return out
    out["record"] = _record(env, reveal)
    if not reveal:
        out["hidden"] = [
            "path",
            "query",
            "header values",
            "body",
            "client",
            "meta",
            "response header values and body",
            "error",
        ]
    return out


def _record(env: Envelope, reveal: bool) -> dict[str, Any]:
    """The envelope's fields that cannot be personal, and the others when ``reveal``."""
    out: dict[str, Any] = {
        "decodes": True,
        "id": env.id,
        "captured": iso(env.ts),
        "source": env.source,
        "method": env.method,
        "host": env.host,
        "body_size": env.body_size,
        "truncated": env.truncated,
    }
    if reveal:
        out |= {
            "url": f"{env.scheme}://{env.host}{env.target}",
            "headers": [list(h) for h in env.headers],
            "body": _preview(env.body),
            "client": env.client,
            "meta": env.meta,
        }
    else:
        out["header_names"] = [name for name, _ in env.headers]
    r = env.response
    if r is not None:
        out["response"] = {"status": r.status, "body_size": r.body_size}
        if reveal:
            out["response"] |= {
                "headers": [list(h) for h in r.headers],
                "body": _preview(r.body),
                "duration_ms": r.duration_ms,
            }
    return out


def _preview(data: bytes) -> str:
    """Text when it is UTF-8, else ``base64:…``; cut at a couple of thousand characters."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "base64:" + base64.b64encode(data).decode("ascii")
    return text if len(text) <= _PREVIEW else text[:_PREVIEW] + f"… ({len(data)} bytes)"


# -- time -----------------------------------------------------------------------------------

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d|w)")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def parse_since(text: str, now_ms: int | None = None) -> int:
    """``30m``/``2h``/``7d`` (that long ago) or an ISO 8601 time → epoch milliseconds."""
    now_ms = now_ms if now_ms is not None else _now_ms()
    value = text.strip().lower()
    age = _AGE.fullmatch(value)
    if age is not None:
        return now_ms - int(float(age[1]) * _UNIT_S[age[2]] * 1000)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--since {text!r} is invalid: expected an age such as 30m, 2h, 7d or an "
            "ISO 8601 time such as 2024-11-24T10:00:00+00:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def age_bucket(age_ms: int) -> str:
    for name, limit in AGE_BUCKETS:
        if limit is None or age_ms < limit * 1000:
            return name
    raise AssertionError("unreachable: the last bucket has no limit")


def iso(ms: int) -> str:
    if ms <= 0:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def human_age(seconds: int) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h``."""
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86_400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86_400}d{seconds % 86_400 // 3600:02d}h"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
