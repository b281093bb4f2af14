"""The dead-letter contract: what the Kafka headers of a ``shadowtap.dlq`` record say.

A stage that cannot handle a record writes it to the DLQ unchanged (same key, same value)
with these headers, in this order::

    shadowtap-dlq-reason        short stable code: not-json, scrub-failed, connect, status-503…
    shadowtap-dlq-error         the error message, at most 1,000 characters
    shadowtap-dlq-stage         processor | replayer
    shadowtap-dlq-target        replayer only: the target's name
    shadowtap-dlq-group         replayer only: the consumer group (one per target)
    shadowtap-dlq-attempts      replayer only: delivery attempts made
    shadowtap-source-topic      where the record was read from
    shadowtap-source-partition
    shadowtap-source-offset

A record sent back by ``shadowtap dlq redrive`` carries ``shadowtap-redriven-from:
<dlq topic>:<partition>:<offset>``, the DLQ record it came from.

Writers (shadowtap.processors.pipeline, shadowtap.replayers.outbox) build headers with
:func:`headers`; readers (``shadowtap dlq``) use :func:`parse`, which ignores headers it does
not know and fills in what an older writer left out, so DLQ records survive rolling upgrades
(see shadowtap.envelope). This module imports no stage: every stage may use it.

A processor-stage record is the captured record as it arrived: unscrubbed production data
that stays in the production trust zone. Its error message may quote it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

REASON = "shadowtap-dlq-reason"
ERROR = "shadowtap-dlq-error"
STAGE = "shadowtap-dlq-stage"
TARGET = "shadowtap-dlq-target"
GROUP = "shadowtap-dlq-group"
ATTEMPTS = "shadowtap-dlq-attempts"
SOURCE_TOPIC = "shadowtap-source-topic"
SOURCE_PARTITION = "shadowtap-source-partition"
SOURCE_OFFSET = "shadowtap-source-offset"
REDRIVEN_FROM = "shadowtap-redriven-from"

PROCESSOR = "processor"
REPLAYER = "replayer"
ERROR_LIMIT = 1000

KafkaHeaders = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why one record is in the DLQ and where it came from (its headers, parsed)."""

    stage: str
    reason: str
    error: str
    source_topic: str
    source_partition: int
    source_offset: int
    target: str = ""
    group: str = ""
    attempts: int = 0

    @property
    def source(self) -> str:
        return coordinates(self.source_topic, self.source_partition, self.source_offset)


def headers(letter: DeadLetter) -> KafkaHeaders:
    """The Kafka headers a stage writes with a dead-lettered record."""
    out = [
        (REASON, letter.reason.encode()),
        (ERROR, letter.error[:ERROR_LIMIT].encode("utf-8", "replace")),
        (STAGE, letter.stage.encode()),
    ]
    if letter.stage == REPLAYER:
        out += [
            (TARGET, letter.target.encode()),
            (GROUP, letter.group.encode()),
            (ATTEMPTS, str(letter.attempts).encode()),
        ]
    out += [
        (SOURCE_TOPIC, letter.source_topic.encode()),
        (SOURCE_PARTITION, str(letter.source_partition).encode()),
        (SOURCE_OFFSET, str(letter.source_offset).encode()),
    ]
    return out


def parse(raw: Sequence[tuple[str, bytes | str | None]] | None) -> DeadLetter:
    """Read DLQ headers; unknown ones are ignored, missing ones are empty (or -1, 0)."""
    found: dict[str, str] = {}
    for name, value in raw or ():
        if name not in found:  # the first of duplicates, as the writer put it first
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            found[name] = text or ""
    return DeadLetter(
        stage=found.get(STAGE, ""),
        reason=found.get(REASON, ""),
        error=found.get(ERROR, ""),
        source_topic=found.get(SOURCE_TOPIC, ""),
        source_partition=_int(found.get(SOURCE_PARTITION), -1),
        source_offset=_int(found.get(SOURCE_OFFSET), -1),
        target=found.get(TARGET, ""),
        group=found.get(GROUP, ""),
        attempts=_int(found.get(ATTEMPTS), 0),
    )


def coordinates(topic: str, partition: int, offset: int) -> str:
    """``topic:partition:offset``: one record's place (topic names cannot hold ``:``)."""
    return f"{topic}:{partition}:{offset}"


def parse_coordinates(text: str) -> tuple[str, int, int]:
    """The inverse of :func:`coordinates`; raise ValueError when ``text`` is not one."""
    topic, partition, offset = text.rsplit(":", 2)
    if not topic:
        raise ValueError(f"{text!r} names no topic")
    return topic, int(partition), int(offset)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default
