"""The processor worker end to end on the real broker: every stage, the DLQ, metrics, PII."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import TopicPartition

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode, encode
from shadowtap.kafka import clean_topic_spec, create_topics, make_consumer
from tests.integration.processors.conftest import Reader, Worker, produce
from tests.pii_corpus import generate, leaks


def _env(path: str, i: int, **kw: Any) -> Envelope:
    return Envelope(
        method=kw.pop("method", "POST"),
        path=path,
        body=kw.pop("body", f'{{"n": {i}, "email": "user{i}@gmail.com"}}'.encode()),
        headers=kw.pop("headers", [("content-type", "application/json")]),
        **kw,
    )


def test_every_stage_through_the_worker(
    settings: Settings,
    start_worker: Callable[..., Worker],
    reader: Callable[[list[str]], Reader],
    unique_name: Callable[[str], str],
) -> None:
    routed = unique_name("routed")
    # Captured five minutes ago, a second apart: the mirror's Kafka timestamps must say so.
    t0 = time.time_ns() // 1_000_000 - 300_000
    kept = [_env(f"/orders/{i}", i, ts=t0 + i * 1000) for i in range(40)]
    api = [_env(f"/api/items/{i}", i) for i in range(20)]
    probes = [_env("/healthz", i) for i in range(10)] + [
        _env("/orders/x", i, headers=[("User-Agent", "kube-probe/1.29")]) for i in range(10)
    ]
    sampled_out = [_env(f"/search/{i}", i) for i in range(10)]
    # Same content as kept[:15], new ids.
    dups = [_env(f"/orders/{i}", i, ts=t0 + i * 1000) for i in range(15)]
    unrouted = [_env(f"/admin/{i}", i) for i in range(5)]
    malformed: list[Envelope | bytes] = [
        b"not json",
        b"[1,2,3]",
        orjson.dumps({"v": 9}),
        orjson.dumps({**orjson.loads(encode(_env("/b64", 0))), "body": "***"}),
    ]
    produce(settings, [*kept, *api, *probes, *sampled_out, *unrouted])
    produce(settings, dups)
    produce(settings, malformed)
    worker = start_worker(
        routes=[{"topic": routed, "path": "/api/*"}, {"topic": "", "path": "/admin/*"}],
        sample_rules=[{"path": "/search/*", "percent": 0}],
    )
    # The reader subscribes before the worker starts: the routed topic must exist by then.
    create_topics(settings, specs=[clean_topic_spec(settings.topics, routed)])
    out = reader([settings.topics.mirror, routed, settings.topics.dlq])
    expected = len(kept) + len(api) + len(malformed)
    out.until(lambda msgs: len(msgs) >= expected, worker)
    out.drain(2)
    by_topic = Counter(m.topic() for m in out.messages)
    assert by_topic == {
        settings.topics.mirror: len(kept),
        routed: len(api),
        settings.topics.dlq: len(malformed),
    }
    mirrored = [decode(m.value()) for m in out.messages if m.topic() == settings.topics.mirror]
    assert {e.id for e in mirrored} == {e.id for e in kept}
    for env in mirrored:
        assert b"@gmail.com" not in env.body
        assert set(env.meta) >= {"filter", "sampled", "dedup_key", "scrubbed", "route"}
        assert env.meta["scrubbed"] == {"EMAIL_ADDRESS": 1}
    assert _stamps_are_capture_times(settings, out.messages, t0)
    dlq = [m for m in out.messages if m.topic() == settings.topics.dlq]
    reasons = sorted(dict(m.headers())["shadowtap-dlq-reason"].decode() for m in dlq)
    assert reasons == ["bad-base64", "bad-type", "not-json", "unsupported-version"]
    assert {m.value() for m in dlq} == set(malformed)

    metrics = worker.metrics_when("shadowtap_processor_records_in_total", 114)
    assert metrics["shadowtap_processor_records_in_total"] == 114
    for reason, n in [
        ("health-path", 10),
        ("probe-agent", 10),
        ("sampled-out", 10),
        ("duplicate", 15),
        ("unrouted", 5),
    ]:
        assert metrics[f'shadowtap_processor_dropped_total{{reason="{reason}"}}'] == n
    assert (
        metrics['shadowtap_processor_entities_scrubbed_total{entity="EMAIL_ADDRESS"}'] == 65
    )  # + unrouted
    assert metrics['shadowtap_processor_dlq_total{reason="not-json"}'] == 1
    assert any(k.startswith("shadowtap_processor_stage_seconds_count") for k in metrics)


def test_corpus_leaves_no_planted_value_in_mirror(
    settings: Settings, start_worker: Callable[..., Worker], reader: Callable[[list[str]], Reader]
) -> None:
    samples = generate(300, seed=11)
    produce(settings, [s.envelope for s in samples])
    worker = start_worker()
    out = reader([settings.topics.mirror, settings.topics.dlq])
    out.until(lambda msgs: len({m.value() for m in msgs}) >= len(samples), worker)
    assert all(m.topic() == settings.topics.mirror for m in out.messages)
    planted = {s.envelope.id: s.planted for s in samples}
    for m in out.messages:
        env = decode(m.value())
        assert leaks(m.value(), planted[env.id]) == []
        orjson.loads(env.body) if env.body[:1] == b"{" else None  # JSON stays JSON
        assert env.header("content-length") == str(len(env.body))


def test_captured_topic_with_another_partition_count_is_processed(
    settings: Settings,
    processor_env: dict[str, str],
    start_worker: Callable[..., Worker],
    reader: Callable[[list[str]], Reader],
) -> None:
    # The topic has 3 partitions; the worker's config says 1. The topic's own count wins
    # (Faust would otherwise refuse every record as not co-partitioned with the dedup table).
    processor_env["SHADOWTAP_TOPICS_PARTITIONS"] = "1"
    records = [_env(f"/orders/{i}", i) for i in range(60)]
    produce(settings, records)  # keyed by id: spread over the 3 partitions
    worker = start_worker()
    out = reader([settings.topics.mirror, settings.topics.dlq])
    out.until(lambda _: out.ids[settings.topics.mirror] >= {e.id for e in records}, worker)
    assert out.counts[settings.topics.dlq] == 0


def _stamps_are_capture_times(settings: Settings, messages: list[Any], t0: int) -> bool:
    """Each mirrored record's Kafka timestamp is its capture time, so offsets_for_times
    finds capture time: the first offset at t0 + 20 s is the 21st record's."""
    mirrored = [m for m in messages if m.topic() == settings.topics.mirror]
    assert all(m.timestamp()[1] == decode(m.value()).ts for m in mirrored)
    consumer = make_consumer(settings.kafka, "stamps-check")
    try:
        parts = sorted({m.partition() for m in mirrored})
        wanted = [TopicPartition(settings.topics.mirror, p, t0 + 20_000) for p in parts]
        found = consumer.offsets_for_times(wanted, timeout=10)
    finally:
        consumer.close()
    for tp in found:
        first = min(
            (m for m in mirrored if m.partition() == tp.partition and m.offset() >= tp.offset),
            key=lambda m: m.offset(),
            default=None,
        )
        later = [m for m in mirrored if m.partition() == tp.partition and m.offset() < tp.offset]
        assert first is None or decode(first.value()).ts >= t0 + 20_000
        assert all(decode(m.value()).ts < t0 + 20_000 for m in later)
    return True
