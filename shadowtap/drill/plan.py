"""A drill's plan: the window's records found, counted and described before anything is sent.

Every stage stamps a record's Kafka timestamp with its capture time, so
``offsets_for_times`` finds capture time: each partition is read from the first offset at
``from - skew`` up to (not including) the first offset at ``to + skew``, and every record
there whose capture time is in ``[from, to)`` and that the filters select is in the window.
That read (no group, nothing committed) makes the count exact and gives the preflight its
figures: bytes, endpoint mix, write requests, recorded production latency, the traffic's
shape (capture times, sorted) and the production hosts the records name::

    plan = make_plan(settings.kafka, topic, window, selection)   # WindowError if not retained
    plan.records, plan.spans[0].start, plan.spans[0].stop, plan.spans[0].last

Retention: a partition whose oldest remaining record is newer than ``from`` (and which has
lost records) no longer covers the window; :func:`make_plan` raises WindowError naming the
oldest available time, unless ``partial`` (then the plan says it is partial).
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

from shadowtap.clock import now_ms
from shadowtap.config import KafkaSettings
from shadowtap.diff.endpoints import learn
from shadowtap.diff.latency import PRODUCTION, LatencyBook
from shadowtap.drill.window import Selection, Window, iso
from shadowtap.envelope import Envelope, decode
from shadowtap.errors import EnvelopeError, WindowError
from shadowtap.topicscan import offsets_at, scan, watermarks

ALL = "*"  # every endpoint at once, in latency books
READS = frozenset({"GET", "HEAD", "OPTIONS"})


def endpoint(env: Envelope) -> str:
    """An endpoint as reports show it: method and learned route template."""
    return f"{env.method.upper()} {learn(env.path)}"


@dataclass(slots=True)
class Span:
    """One partition's part of the window: offsets ``[start, stop)``, the last record there
    (-1: none) and how many of its records are in the window."""

    partition: int
    start: int
    stop: int
    last: int = -1
    records: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "partition": self.partition,
            "start": self.start,
            "stop": self.stop,
            "last": self.last,
            "records": self.records,
        }


@dataclass(slots=True)
class Plan:
    topic: str
    window: Window
    selection: Selection
    spans: dict[int, Span] = field(default_factory=dict)
    records: int = 0
    bytes: int = 0
    writes: int = 0
    read: int = 0  # records read in the spans (in the window or not)
    endpoints: Counter[str] = field(default_factory=Counter)
    times: array[int] = field(default_factory=lambda: array("q"))  # capture times, sorted
    latency: LatencyBook = field(default_factory=LatencyBook)  # production's, recorded
    hosts: dict[str, Envelope] = field(default_factory=dict)  # one record per host seen
    partial: str = ""  # why the window is not fully retained ("" when it is)

    @property
    def first_ts(self) -> int | None:
        return self.times[0] if self.times else None

    def add(self, env: Envelope, size: int) -> None:
        self.records += 1
        self.bytes += size
        if env.method.upper() not in READS:
            self.writes += 1
        name = endpoint(env)
        self.endpoints[name] += 1
        self.times.append(env.ts)
        if env.response is not None:
            self.latency.add(name, PRODUCTION, env.response.duration_ms)
            self.latency.add(ALL, PRODUCTION, env.response.duration_ms)
        self.hosts.setdefault(f"{env.scheme}://{env.host}", env)

    def to_json(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "window": self.window.to_json(),
            "filters": self.selection.to_json(),
            "records": self.records,
            "bytes": self.bytes,
            "writes": self.writes,
            "endpoints": dict(self.endpoints.most_common()),
            "spans": [s.to_json() for s in self.spans.values()],
            "partial": self.partial,
        }


def make_plan(
    kafka: KafkaSettings,
    topic: str,
    window: Window,
    selection: Selection,
    *,
    partial: bool = False,
    retention_ms: float | None = None,
) -> Plan:
    """Find and read the window (see the module docstring); WindowError when retention no
    longer covers it and ``partial`` is not set."""
    plan = Plan(topic, window, selection)
    marks = watermarks(kafka, topic)
    starts = offsets_at(kafka, topic, window.read_from)
    stops = offsets_at(kafka, topic, window.read_to)
    missing = _not_retained(kafka, topic, window, marks, retention_ms)
    if missing:
        if not partial:
            raise WindowError(
                f"the window starts at {iso(window.from_ms)}, but {topic} no longer holds "
                f"all of it: {missing}; pick a later --from, or pass --partial to replay "
                "what is left"
            )
        plan.partial = missing
    for p, (_low, high) in marks.items():
        start = high if starts.get(p, -1) < 0 else starts[p]
        stop = high if stops.get(p, -1) < 0 else stops[p]
        plan.spans[p] = Span(p, start, max(start, stop))
    wanted = {p: s.start for p, s in plan.spans.items() if s.start < s.stop}
    if wanted:
        chosen = selection.compiled()
        for msg in scan(
            kafka,
            topic,
            starts=wanted,
            partitions=wanted,
            stops={p: s.stop for p, s in plan.spans.items()},
        ):
            plan.read += 1
            span = plan.spans[msg.partition()]
            span.last = msg.offset()
            value = msg.value() or b""
            try:
                env = decode(value)
            except EnvelopeError:
                continue  # not an envelope: the replayer's DLQ would take it, a drill skips it
            if window.holds(env.ts) and chosen.selects(env):
                span.records += 1
                plan.add(env, len(value))
    plan.times = array("q", sorted(plan.times))
    return plan


def _not_retained(
    kafka: KafkaSettings,
    topic: str,
    window: Window,
    marks: dict[int, tuple[int, int]],
    retention_ms: float | None,
) -> str:
    """Why retention no longer covers ``[from, ...)`` ("" when it does)."""
    oldest: int | None = None
    emptied: list[int] = []
    for p, (low, high) in marks.items():
        if low == 0:
            continue  # nothing deleted yet: whatever the partition had is there
        if low >= high:
            emptied.append(p)
            continue
        first = next(iter(scan(kafka, topic, starts={p: low}, partitions=[p], stops={p: low + 1})))
        ts = int(first.timestamp()[1])
        if ts > window.from_ms:
            oldest = ts if oldest is None else max(oldest, ts)
    if emptied and retention_ms is not None and window.from_ms < now_ms() - retention_ms:
        return (
            f"partitions {emptied} have lost every record to retention "
            f"({retention_ms / 3_600_000:g} h)"
        )
    if oldest is not None:
        return f"the oldest time available in every partition is {iso(oldest)}"
    return ""
