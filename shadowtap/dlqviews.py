"""What ``shadowtap dlq stats|list|show`` print for DLQ records (shadowtap.deadletters).

``stats`` counts records by stage, reason and group with their ages; ``list`` prints one
line per record with nothing from its value but the record id; ``show`` prints one record.

What is shown: a processor-stage record is the captured request before scrubbing, so by
default ``show`` prints only what cannot be personal (its id, time, source, method, host,
sizes, header names, response status) and hides its path, query, header values, bodies,
client address, meta and the error message (which may quote the record); they appear only
with ``--show-sensitive``. A replayer-stage record comes from the mirror topic, which holds
scrubbed data only, and is shown whole. A record without a stage is treated as sensitive.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shadowtap import clock, dlq
from shadowtap.deadletters import Letter, Marker
from shadowtap.envelope import Envelope, decode
from shadowtap.errors import EnvelopeError

AGE_BUCKETS = (("<1h", 3600), ("<1d", 86_400), ("<7d", 7 * 86_400), (">=7d", None))
_PREVIEW = 2000  # characters of a body shown by ``show``


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
    now_ms = now_ms if now_ms is not None else clock.now_ms()
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


def describe(
    letter: Letter, marker: Marker | None, *, show_sensitive: bool, now_ms: int | None = None
) -> dict[str, Any]:
    """What ``show`` prints for one record; ``hidden`` lists what was left out and why."""
    now_ms = now_ms if now_ms is not None else clock.now_ms()
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
