"""Processor-stage DLQ records: shown without their unscrubbed values, redriven once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import orjson

from shadowtap import dlq
from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode, encode
from shadowtap.kafka import make_producer
from tests.integration.dlqtool import dlq as dlq_cli
from tests.integration.dlqtool import dlq_json
from tests.integration.processors.conftest import Reader, Worker, produce

EMAIL = "jane.doe@example.com"
PHONE = "+1 373-770-2176"


def test_dead_letters_hide_unscrubbed_values_and_a_redrive_reaches_the_mirror_once(
    settings: Settings,
    processor_env: dict[str, str],
    start_worker: Callable[..., Worker],
    reader: Callable[[list[str]], Reader],
    tmp_path: Path,
) -> None:
    group = processor_env["SHADOWTAP_PROCESSOR_GROUP"]  # the worker's, for redrive's checks
    settings = replace(settings, processor=replace(settings.processor, group=group))
    unreadable = Envelope(
        method="POST",
        path=f"/users/{EMAIL}/orders",
        query=f"phone={PHONE}",
        headers=[("content-encoding", "br"), ("x-customer", EMAIL)],
        body=f'{{"email": "{EMAIL}"}}'.encode(),
    )
    newer = orjson.dumps({"v": 2, "id": "from-a-newer-capture"})
    produce(settings, [unreadable, newer])
    worker = start_worker()
    out = reader([settings.topics.mirror, settings.topics.dlq])
    out.until(lambda _: out.counts[settings.topics.dlq] >= 2, worker)

    counts = dlq_json(settings, tmp_path, "stats")["counts"]
    assert sorted((c["stage"], c["reason"], c["count"]) for c in counts) == [
        ("processor", "scrub-failed", 1),
        ("processor", "unsupported-version", 1),
    ]
    # By default nothing of the captured request that could be personal is printed.
    code, shown = dlq_cli(settings, tmp_path, "show", unreadable.id)
    assert code == 0 and "scrub-failed" in shown and settings.topics.captured in shown
    for secret in (EMAIL, "/users/", PHONE.split()[1], "373"):
        assert secret not in shown
    assert "x-customer" in shown and "--show-sensitive" in shown
    as_json = dlq_json(settings, tmp_path, "show", unreadable.id)["records"][0]
    assert EMAIL not in orjson.dumps(as_json).decode() and as_json["error"] is None
    code, revealed = dlq_cli(settings, tmp_path, "show", unreadable.id, "--show-sensitive")
    assert code == 0 and EMAIL in revealed and "content-encoding" in revealed

    # A record the processor dead-lettered for a bug fixed since, written as it writes one.
    fixed = Envelope(
        method="POST", path="/api/orders", body=f'{{"email": "{EMAIL}", "n": 1}}'.encode()
    )
    letter = dlq.DeadLetter(
        dlq.PROCESSOR, "internal-error", "RuntimeError('bug')", settings.topics.captured, 0, 7
    )
    producer = make_producer(settings.kafka)
    producer.produce(
        settings.topics.dlq, encode(fixed), key=fixed.id.encode(), headers=dlq.headers(letter)
    )
    assert producer.flush(10) == 0

    preview = dlq_json(settings, tmp_path, "redrive", "--reason", "internal-error")
    assert preview["to_send"] == [
        {
            "stage": "processor",
            "reason": "internal-error",
            "to": settings.topics.captured,
            "records": 1,
        }
    ]
    sent = dlq_json(settings, tmp_path, "redrive", "--reason", "internal-error", "--execute")
    assert sent["sent"] == 1 and sent["warnings"] == []  # the processor's group reads it
    out.until(lambda _: fixed.id in out.ids[settings.topics.mirror], worker)
    again = dlq_json(settings, tmp_path, "redrive", "--reason", "internal-error", "--execute")
    assert (again["sent"], again["already_redriven"]) == (0, 1)
    out.drain(1.5)
    copies = [
        m
        for m in out.messages
        if m.topic() == settings.topics.mirror and fixed.id in str(m.value())
    ]
    assert len(copies) == 1
    assert EMAIL not in decode(copies[0].value()).body.decode()  # scrubbed on its way
