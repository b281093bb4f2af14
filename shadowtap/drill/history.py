"""Drill runs kept on a compacted topic (``topics.drills``), so a run is compared with the
earlier runs of its name.

One record per run, keyed ``<name>@<started ISO time>``: written as the run starts (state
``running``, with the window and filters, which ``--resume`` reads back) and again as it
ends (``done``, ``paused`` or ``failed``, with its figures and goals). Compaction keeps the
last record of each run::

    ensure_topic(settings)
    save(settings, record)                    # record["name"], record["started"] ...
    runs = load(settings.kafka, settings.topics.drills)          # oldest first
    latest(runs, "nightly")                                       # the newest run of a name
"""

from __future__ import annotations

from typing import Any

import orjson

from shadowtap import compacted
from shadowtap.config import KafkaSettings, Settings
from shadowtap.kafka import TopicSpec, create_topics

_YEAR_MS = 365 * 24 * 3_600_000


def spec(settings: Settings) -> TopicSpec:
    return TopicSpec(
        settings.topics.drills, 1, settings.topics.replication_factor, _YEAR_MS, compacted=True
    )


def ensure_topic(settings: Settings) -> None:
    create_topics(settings, specs=[spec(settings)])


def key_of(record: dict[str, Any]) -> str:
    return f"{record['name']}@{record['started']}"


def save(settings: Settings, record: dict[str, Any], timeout_s: float = 15.0) -> None:
    """Write one run's record and wait for the broker's acknowledgement."""
    value = orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)
    topic = settings.topics.drills
    compacted.save(
        settings.kafka, topic, key_of(record), value, what="drill's record", timeout_s=timeout_s
    )


def load(kafka: KafkaSettings, topic: str) -> list[dict[str, Any]]:
    """Every run on the topic (the last record of each key), oldest start first."""
    runs = [orjson.loads(value) for value in compacted.load(kafka, topic).values()]
    return sorted(runs, key=lambda r: (str(r.get("started")), str(r.get("name"))))


def of_name(runs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in runs if r.get("name") == name]


def latest(runs: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    mine = of_name(runs, name)
    return mine[-1] if mine else None
