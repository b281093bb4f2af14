"""confluent-kafka clients and the topics, built one way for every stage.

Every stage builds its clients here so that bootstrap servers, security
(shadowtap.kafka_security) and compression are configured in one place::

    producer = make_producer(settings.kafka, {"linger.ms": 5})
    consumer = make_consumer(settings.kafka, group="staging")
    create_topics(settings)          # idempotent: existing topics are left as they are

The start-up check (``wait_for_broker``) is shadowtap.kafka_check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

from shadowtap.config import KafkaSettings, Settings, TopicSettings
from shadowtap.errors import BrokerError
from shadowtap.kafka_security import Security

_HOUR_MS = 3_600_000
# librdkafka's own log lines go through Python logging instead of raw stderr.
LIBRDKAFKA_LOGGER = logging.getLogger("shadowtap.librdkafka")


def client_config(kafka: KafkaSettings, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """librdkafka properties shared by every client: bootstrap, security, then
    ``kafka.librdkafka``, then ``extra``. Raises ConfigError for a bad security setting."""
    conf: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap,
        "client.id": kafka.client_id,
        "logger": LIBRDKAFKA_LOGGER,
    }
    conf.update(Security.of(kafka).librdkafka())
    conf.update(kafka.librdkafka)
    conf.update(extra or {})
    return conf


def make_producer(kafka: KafkaSettings, extra: Mapping[str, Any] | None = None) -> Producer:
    """A producer with idempotence-friendly defaults; ``extra`` overrides them."""
    base = {
        "compression.type": kafka.compression,
        "linger.ms": 5,
        "acks": "all",
        "enable.idempotence": True,
    }
    return Producer(client_config(kafka, {**base, **(extra or {})}))


def make_consumer(
    kafka: KafkaSettings, group: str, extra: Mapping[str, Any] | None = None
) -> Consumer:
    """A consumer in ``group`` that commits only when told (at-least-once)."""
    base = {
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
    }
    return Consumer(client_config(kafka, {**base, **(extra or {})}))


def produce(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    *,
    headers: list[tuple[str, bytes]] | None = None,
    partition: int = -1,
    timestamp: int = 0,
    on_delivery: Callable[[Any, Any], None],
) -> None:
    """Queue one message (``partition`` -1: the partitioner picks; ``timestamp`` epoch ms,
    0: now; a stage writing a record passes its capture time), serving delivery reports
    while librdkafka's queue is full: a stage that must not lose a message waits for room
    (only a broker gone for minutes fills it). librdkafka's other refusals raise."""
    while True:
        try:
            producer.produce(
                topic,
                value,
                key=key,
                partition=partition,
                timestamp=timestamp,
                headers=cast(Any, headers),  # its stub wants str | bytes | None values
                on_delivery=on_delivery,
            )
            return
        except BufferError:
            producer.poll(0.05)


def make_admin(kafka: KafkaSettings, extra: Mapping[str, Any] | None = None) -> AdminClient:
    return AdminClient(client_config(kafka, extra))


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as shadowtap wants it."""

    name: str
    partitions: int
    replication_factor: int
    retention_ms: int
    compacted: bool = False  # keep the latest record per key (and drop keys after retention)
    max_message_bytes: int = 0  # 0: the broker's default (1 MB)

    @property
    def config(self) -> dict[str, str]:
        config = {"retention.ms": str(self.retention_ms)}
        if self.compacted:
            config["cleanup.policy"] = "compact,delete"
        if self.max_message_bytes:
            config["max.message.bytes"] = str(self.max_message_bytes)
        return config


def topic_specs(topics: TopicSettings) -> list[TopicSpec]:
    """shadowtap's topics (captured, mirror, results, dlq, diffs and the redrive markers) with
    their configured size and retention.

    The redrive markers (shadowtap.redrive) outlive the DLQ records they mark.
    """

    def spec(name: str, hours: float) -> TopicSpec:
        return TopicSpec(name, topics.partitions, topics.replication_factor, int(hours * _HOUR_MS))

    return [
        spec(topics.captured, topics.captured_retention_hours),
        spec(topics.mirror, topics.mirror_retention_hours),
        spec(topics.results, topics.results_retention_hours),
        spec(topics.dlq, topics.dlq_retention_hours),
        spec(topics.diffs, topics.diffs_retention_hours),
        TopicSpec(
            topics.redriven,
            1,
            topics.replication_factor,
            int(2 * topics.dlq_retention_hours * _HOUR_MS),
            compacted=True,
        ),
    ]


def clean_topic_spec(topics: TopicSettings, name: str) -> TopicSpec:
    """A topic of clean records beside the mirror (a processor route's, a replayer group's
    retry topic): the mirror's partitions and retention."""
    return TopicSpec(
        name,
        topics.partitions,
        topics.replication_factor,
        int(topics.mirror_retention_hours * _HOUR_MS),
    )


def retry_topic_spec(topics: TopicSettings, group: str) -> TopicSpec:
    """Replayer ``group``'s retry topic: redriven records, clean like the mirror."""
    return clean_topic_spec(topics, topics.retry(group))


def retry_group(group: str) -> str:
    """The consumer group in which replayer ``group``'s workers read its retry topic.

    Not ``group`` itself: the assignor balances a group's partition count over all its
    topics, so one group reading the mirror and the retry topic could leave a worker with
    only (empty) retry partitions while another took every mirror partition.
    """
    return f"{group}.retry"


def create_topics(
    settings: Settings, timeout: float = 30.0, specs: list[TopicSpec] | None = None
) -> dict[str, str]:
    """Create missing topics (``specs``, default shadowtap's: ``topic_specs``); return
    ``{name: "created" | "exists"}``. Safe to run twice."""
    admin = make_admin(settings.kafka)
    specs = topic_specs(settings.topics) if specs is None else specs
    existing = set(_list_topics(admin, timeout))
    wanted = [s for s in specs if s.name not in existing]
    result = {s.name: "exists" for s in specs if s.name in existing}
    if wanted:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor, config=s.config) for s in wanted],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout)
                result[name] = "created"
            except KafkaException as exc:
                if (
                    exc.args
                    and getattr(exc.args[0], "name", lambda: "")() == "TOPIC_ALREADY_EXISTS"
                ):
                    result[name] = "exists"
                else:
                    raise BrokerError(f"could not create topic {name}: {exc}") from exc
        _await_visible(admin, [s.name for s in wanted], timeout)
    return result


def _await_visible(admin: AdminClient, names: list[str], timeout: float) -> None:
    """Wait until the broker's metadata shows newly created topics.

    A consumer that subscribes to a topic its broker does not show yet finds it only at its
    next metadata refresh (``topic.metadata.refresh.interval.ms``, five minutes).
    """
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            found = _metadata(admin, timeout).topics.get(name)
            if found is not None and found.error is None and found.partitions:
                break
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"topic {name} was created but is not visible after {timeout:.0f}s"
                )
            time.sleep(0.05)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    partitions: int
    replication_factor: int
    retention_ms: int | None


def describe_topics(settings: Settings, timeout: float = 15.0) -> list[TopicInfo | None]:
    """What the cluster has for each configured topic (None where it does not exist)."""
    admin = make_admin(settings.kafka)
    metadata = _metadata(admin, timeout)
    out: list[TopicInfo | None] = []
    for spec in topic_specs(settings.topics):
        topic = metadata.topics.get(spec.name)
        if topic is None or topic.error is not None:
            out.append(None)
            continue
        partitions = list(topic.partitions.values())
        resource = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
        try:
            configs = admin.describe_configs([resource])[resource].result(timeout)
            retention = int(configs["retention.ms"].value)
        except (KafkaException, KeyError, ValueError):
            retention = None
        out.append(
            TopicInfo(
                spec.name,
                len(partitions),
                len(partitions[0].replicas) if partitions else 0,
                retention,
            )
        )
    return out


def partition_count(kafka: KafkaSettings, topic: str, timeout: float = 15.0) -> int | None:
    """How many partitions ``topic`` has on the cluster (None if it does not exist)."""
    found = _metadata(make_admin(kafka), timeout).topics.get(topic)
    if found is None or found.error is not None:
        return None
    return len(found.partitions)


def _metadata(admin: AdminClient, timeout: float) -> Any:
    try:
        return admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise BrokerError(f"Kafka did not answer within {timeout:.0f}s: {exc}") from exc


def _list_topics(admin: AdminClient, timeout: float) -> list[str]:
    return list(_metadata(admin, timeout).topics)
