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

What ``stats``, ``list`` and ``show`` print, and what ``show`` hides of a record that may
be personal, is shadowtap.dlqviews. Records are read from the topic as it is when the
command starts (each partition up to its end offset then, shadowtap.topicscan); nothing is
committed and no consumer group is joined.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from shadowtap import dlq
from shadowtap.config import Settings
from shadowtap.topicscan import scan, topic_exists


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


def newest(found: Iterable[Letter], selection: Selection, limit: int) -> list[Letter]:
    """The ``limit`` newest records that match, newest first."""
    return heapq.nlargest(
        limit,
        (letter for letter in found if selection.matches(letter)),
        key=lambda x: (x.timestamp_ms, x.partition, x.offset),
    )


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
