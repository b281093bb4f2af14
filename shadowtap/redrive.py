"""``shadowtap dlq redrive``: after a fix, send dead-lettered records back where they failed.

Usage::

    shadowtap dlq redrive --reason scrub-failed [--reason …] [--since 2h]
                          [--stage processor|replayer] [--group staging] [--execute] [--json]

Without ``--execute`` it only previews: how many records of each stage and reason would go
where, how many were redriven before, which cannot be, and warnings (a group with no running
worker, say). As with ``kafka-consumer-groups --reset-offsets``, nothing changes until the
same command is run again with ``--execute``.

Where a record goes:

- processor stage → ``topics.captured``: the processor runs every stage on it again;
- replayer stage → ``topics.retry(group)`` (``shadowtap.retry.<group>``) of the group it
  failed in. Only that group's workers read that topic (beside the mirror, with a second
  consumer in the group ``<group>.retry``: shadowtap.replayers.worker), so the record
  reaches that target only, with the group's own rewrite, policy, results and metrics.
  Never the mirror topic, which every group would replay again;
- a record without a stage, or a replayer record without a group, is not redriven (listed).

A redriven record keeps its key and value, gets the routing headers of its envelope
(``method``, ``path``, ``content-type``) when it has one, and ``shadowtap-redriven-from:
<dlq topic>:<partition>:<offset>``. If it fails again it lands in the DLQ again as a new
record, which a later redrive can send back.

Once only: markers in ``topics.redriven``, a compacted topic keyed by the DLQ record's
coordinates, read before anything is chosen. Records go in batches of ``batch`` (500):

1. a ``sending`` marker for each, holding the end offsets of its destination (flushed);
2. the records (flushed);
3. a ``done`` marker for each, holding where it landed (flushed).

A record with a ``done`` marker is never sent again. A ``sending`` marker is what a run that
stopped between steps 1 and 3 leaves (killed, machine lost, broker gone). The next run reads
the destination from the offsets in that marker for records whose ``shadowtap-redriven-from``
names it: a record found there is marked ``done`` and not sent again; one not found is sent.
So a crash duplicates nothing. What is left: a redriven copy that the destination's
retention deleted before the next run is sent again (it was consumed long before), and two
redrives of one DLQ at the same moment can both send a record: run one at a time. Markers
name DLQ records by topic, partition and offset: a DLQ topic deleted and created again
starts its offsets over, so delete its marker topic with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from shadowtap import dlq
from shadowtap.clock import now_ms
from shadowtap.config import Settings
from shadowtap.deadletters import Letter, Marker, Selection, letters, markers
from shadowtap.envelope import decode, kafka_headers
from shadowtap.errors import BrokerError, ConfigError, EnvelopeError
from shadowtap.kafka import (
    clean_topic_spec,
    create_topics,
    make_admin,
    make_producer,
    retry_group,
    topic_specs,
)
from shadowtap.topicscan import end_offsets, scan, topic_exists

BATCH = 500
_FLUSH_S = 60.0


@dataclass(frozen=True, slots=True)
class Route:
    """Where a DLQ record goes back to, and the consumer group that reads it there
    (a replayer group's retry topic is read in ``<group>.retry``)."""

    topic: str
    group: str
    stage: str


def route(letter: Letter, settings: Settings) -> Route | str:
    """The record's way back, or why it has none."""
    why = letter.why
    if why.stage == dlq.PROCESSOR:
        return Route(settings.topics.captured, settings.processor.group, why.stage)
    if why.stage == dlq.REPLAYER:
        if not why.group:
            return "no replayer group in its headers"
        try:
            return Route(settings.topics.retry(why.group), retry_group(why.group), why.stage)
        except ConfigError:
            return f"group {why.group!r} cannot name a retry topic"
    return f"unknown stage {why.stage!r}" if why.stage else "no stage in its headers"


@dataclass(slots=True)
class Report:
    """What a redrive chose (and, with ``executed``, did)."""

    executed: bool
    matched: int = 0
    to_send: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    already: int = 0  # redriven before (marked done, or found arrived after a stopped run)
    arrived: int = 0  # of those: left in doubt by a stopped run, found in the destination
    not_redrivable: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    sent: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "executed": self.executed,
            "matched": self.matched,
            "to_send": [
                {"stage": s, "reason": r, "to": t, "records": n}
                for (s, r, t), n in sorted(self.to_send.items())
            ],
            "already_redriven": self.already,
            "found_after_stopped_run": self.arrived,
            "not_redrivable": [
                {"stage": s, "reason": r, "why": w, "records": n}
                for (s, r, w), n in sorted(self.not_redrivable.items())
            ],
            "sent": self.sent,
            "warnings": self.warnings,
        }


class Redrive:
    """One run: read markers, settle what a stopped run left, choose, send in batches."""

    def __init__(
        self,
        settings: Settings,
        selection: Selection,
        *,
        execute: bool,
        batch: int = BATCH,
        on_sent: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.selection = selection
        self.execute = execute
        self.batch = max(1, batch)
        self.on_sent = on_sent
        self.report = Report(executed=execute)
        self._producer: Any = None
        self._marker_errors: list[str] = []
        self._checked: set[Route] = set()

    def run(self) -> Report:
        if self.execute:  # never let the broker auto-create it uncompacted
            topics = self.settings.topics
            specs = [s for s in topic_specs(topics) if s.name == topics.redriven]
            create_topics(self.settings, specs=specs)
        marks = markers(self.settings)
        in_doubt = {c: m for c, m in marks.items() if m.state == "sending"}
        arrived = self._arrived(in_doubt)
        if self.execute and arrived:
            self._mark_done(arrived)
        done = {c for c, m in marks.items() if m.state == "done"} | set(arrived)
        pending: list[tuple[Letter, Route]] = []
        for letter in letters(self.settings, self.selection.since_ms):
            if not self.selection.matches(letter):
                continue
            self.report.matched += 1
            why = letter.why
            if letter.coordinates in done:
                self.report.already += 1
                self.report.arrived += letter.coordinates in arrived
                continue
            way = route(letter, self.settings)
            if isinstance(way, str):
                self.report.not_redrivable[(why.stage, why.reason, way)] += 1
                continue
            self.report.to_send[(why.stage, why.reason, way.topic)] += 1
            if way not in self._checked:
                self._checked.add(way)
                self._check(way)
            if self.execute:
                pending.append((letter, way))
                if len(pending) >= self.batch:
                    self._send(pending)
                    pending = []
        if pending:
            self._send(pending)
        return self.report

    # -- a batch -----------------------------------------------------------------------

    def _send(self, batch: list[tuple[Letter, Route]]) -> None:
        starts = {t: end_offsets(self.settings.kafka, t) for t in {w.topic for _, w in batch}}
        self._mark_sending(batch, starts)
        landed, failed = self._send_records(batch)
        self._mark_done(landed)
        self.report.sent += len(landed)
        if self.on_sent is not None:
            self.on_sent(self.report.sent)
        if failed:
            raise BrokerError(
                f"{len(failed)} records could not be redriven (first: {failed[0]}); they stay "
                "marked as in doubt, and the next redrive sends each unless it finds it arrived"
            )

    def _mark_sending(
        self, batch: list[tuple[Letter, Route]], starts: dict[str, dict[int, int]]
    ) -> None:
        now = now_ms()
        for letter, way in batch:
            marker = Marker("sending", way.topic, now, starts=starts[way.topic])
            self._produce(self.settings.topics.redriven, letter.coordinates, marker)
        self._flush("marking records as being redriven")

    def _send_records(
        self, batch: list[tuple[Letter, Route]]
    ) -> tuple[dict[str, tuple[str, int, int]], list[str]]:
        landed: dict[str, tuple[str, int, int]] = {}
        failed: list[str] = []
        producer = self._client()
        for letter, way in batch:
            coordinates = letter.coordinates

            def report(err: Any, msg: Any, coordinates: str = coordinates) -> None:
                if err is not None:
                    failed.append(f"{coordinates}: {err}")
                else:
                    landed[coordinates] = (msg.topic(), msg.partition(), msg.offset())

            self._produce_raw(way.topic, letter.value, letter.key, redriven_headers(letter), report)
        remaining = producer.flush(_FLUSH_S)
        if remaining:
            failed.append(f"{remaining} records not acknowledged within {_FLUSH_S:.0f}s")
        return landed, failed

    def _mark_done(self, landed: dict[str, tuple[str, int, int]]) -> None:
        now = now_ms()
        for coordinates, (topic, partition, offset) in landed.items():
            marker = Marker("done", topic, now, partition=partition, offset=offset)
            self._produce(self.settings.topics.redriven, coordinates, marker)
        self._flush("marking records as redriven")

    # -- after a stopped run -------------------------------------------------------------

    def _arrived(self, in_doubt: dict[str, Marker]) -> dict[str, tuple[str, int, int]]:
        """Records a stopped run may have sent: those found in their destination."""
        found: dict[str, tuple[str, int, int]] = {}
        by_topic: dict[str, dict[str, Marker]] = {}
        for coordinates, marker in in_doubt.items():
            by_topic.setdefault(marker.to, {})[coordinates] = marker
        for topic, wanted in by_topic.items():
            if not topic_exists(self.settings.kafka, topic):
                continue
            starts: dict[int, int] = {}
            for marker in wanted.values():
                for p, o in marker.starts.items():
                    starts[p] = min(o, starts.get(p, o))
            for msg in scan(self.settings.kafka, topic, starts=starts):
                origin = _header(msg.headers(), dlq.REDRIVEN_FROM)
                if origin in wanted and origin not in found:
                    found[origin] = (topic, msg.partition(), msg.offset())
        return found

    # -- checks --------------------------------------------------------------------------

    def _check(self, way: Route) -> None:
        """Warn about a destination nobody will read; create a missing retry topic."""
        kafka = self.settings.kafka
        if not topic_exists(kafka, way.topic):
            if way.stage != dlq.REPLAYER:
                raise BrokerError(f"{way.topic} does not exist: run `shadowtap topics create`")
            self.report.warnings.append(
                f"{way.topic} did not exist: no replayer worker of this shadowtap version has "
                "started in its group; the records wait there until one does"
                + ("" if self.execute else " (it is created with --execute)")
            )
            if self.execute:
                spec = clean_topic_spec(self.settings.topics, way.topic)
                create_topics(self.settings, specs=[spec])
            return
        members = _group_members(self.settings, way.group)
        if members is None:
            self.report.warnings.append(f"could not describe consumer group {way.group!r}")
        elif not members:
            self.report.warnings.append(
                f"group {way.group!r} has no running member: the records wait in {way.topic} "
                "until one starts"
                + (" (replayer workers read it in that group)" if way.stage == dlq.REPLAYER else "")
            )
        elif way.stage == dlq.REPLAYER and not any(way.topic in topics for topics in members):
            self.report.warnings.append(
                f"no member of group {way.group!r} reads {way.topic}: the records wait there "
                "until one does"
            )

    # -- producing -----------------------------------------------------------------------

    def _client(self) -> Any:
        if self._producer is None:
            self._producer = make_producer(self.settings.kafka)
        return self._producer

    def _produce(self, topic: str, key: str, marker: Marker) -> None:
        value = orjson.dumps(marker.to_json())
        self._produce_raw(topic, value, key.encode(), None, self._marker_delivered)

    def _marker_delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._marker_errors.append(str(err))

    def _produce_raw(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, bytes]] | None,
        on_delivery: Callable[[Any, Any], None] | None,
    ) -> None:
        producer = self._client()
        while True:
            try:
                producer.produce(topic, value, key=key, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let librdkafka send some first
                producer.poll(0.1)
        producer.poll(0)

    def _flush(self, doing: str) -> None:
        remaining = self._client().flush(_FLUSH_S)
        errors, self._marker_errors = self._marker_errors, []
        if remaining:
            errors.append(f"{remaining} not acknowledged within {_FLUSH_S:.0f}s")
        if errors:
            raise BrokerError(f"{doing}: {errors[0]}")


def redriven_headers(letter: Letter) -> list[tuple[str, bytes]]:
    """Routing headers of the record's envelope (when it is one) and where it came from."""
    try:
        out = kafka_headers(decode(letter.value))
    except EnvelopeError:
        out = []
    out.append((dlq.REDRIVEN_FROM, letter.coordinates.encode()))
    return out


def _group_members(settings: Settings, group: str) -> list[set[str]] | None:
    """The topics each member of ``group`` is assigned; None if the group cannot be read."""
    admin = make_admin(settings.kafka)
    try:
        description = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
    except Exception:  # an old broker, no permission: a warning, not a failure
        return None
    return [
        {tp.topic for tp in (m.assignment.topic_partitions if m.assignment else [])}
        for m in description.members
    ]


def _header(headers: list[tuple[str, bytes]] | None, name: str) -> str:
    for key, value in headers or ():
        if key == name:
            return value.decode("utf-8", "replace") if value else ""
    return ""
