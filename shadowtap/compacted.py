"""Records kept per key on a compacted topic: the latest one of each key is what counts.

Drill runs (shadowtap.drill.history) and the diff workers' states (shadowtap.diff.states)
are kept so::

    save(settings.kafka, topic, "nightly@2026-12-01T02:00:00Z", value)   # waits for the ack
    latest = load(settings.kafka, topic)          # {key: value}, in the order first written
"""

from __future__ import annotations

from typing import Any

from shadowtap.config import KafkaSettings
from shadowtap.errors import BrokerError
from shadowtap.kafka import make_producer, produce
from shadowtap.topicscan import scan, topic_exists


def save(
    kafka: KafkaSettings,
    topic: str,
    key: str,
    value: bytes,
    *,
    what: str = "record",
    timeout_s: float = 15.0,
    producer: Any = None,
) -> None:
    """Write one record and wait for the broker's acknowledgement; BrokerError if none came."""
    errors: list[str] = []

    def acked(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    producer = producer or make_producer(kafka)
    produce(producer, topic, value, key.encode(), on_delivery=acked)
    if producer.flush(timeout_s) or errors:
        raise BrokerError(
            f"the {what} was not written to {topic}: "
            + (errors[0] if errors else f"no acknowledgement within {timeout_s:.0f}s")
        )


def load(kafka: KafkaSettings, topic: str) -> dict[str, bytes]:
    """The latest value of every key on ``topic`` (none for a missing topic or a deleted key)."""
    if not topic_exists(kafka, topic):
        return {}
    latest: dict[str, bytes] = {}
    for msg in scan(kafka, topic):
        key = (msg.key() or b"").decode()
        value = msg.value()
        if value is None:
            latest.pop(key, None)
        else:
            latest[key] = value
    return latest
