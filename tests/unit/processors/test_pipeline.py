"""The stages composed: outcomes, reasons, meta, and no exception ever escapes."""

from __future__ import annotations

import orjson
import pytest

from shadowtap.config import Settings
from shadowtap.envelope import Envelope, decode, encode
from shadowtap.processors.pipeline import Pipeline, dlq_headers


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(
        Settings.load(
            env={},
            overrides={
                "processor": {
                    "routes": [
                        {"topic": "api-topic", "path": "/api/*"},
                        {"topic": "", "path": "/drop*"},
                    ]
                }
            },
        )
    )


def _value(**kw: object) -> bytes:
    base: dict[str, object] = {"method": "POST", "path": "/x", "body": b'{"e":"ivan@acme.io"}'}
    base.update(kw)
    return encode(Envelope(**base))  # type: ignore[arg-type]


def test_kept_record_has_meta_of_every_stage(pipeline: Pipeline) -> None:
    out = pipeline.process(_value(path="/api/orders"))
    assert out.kind == "out" and out.topic == "api-topic"
    env = decode(out.value)
    assert b"ivan@acme.io" not in env.body
    meta = env.meta
    assert meta["filter"] == "pass" and meta["sampled"]["percent"] == 100.0
    assert meta["dedup_key"] and meta["scrubbed"] == {"EMAIL_ADDRESS": 1}
    assert meta["route"] == "api-topic"
    assert set(out.timings) == {"decode", "filter", "sample", "dedup", "scrub", "route"}
    assert ("path", b"/api/orders") in out.headers


def test_drop_reasons(pipeline: Pipeline) -> None:
    assert pipeline.process(_value(path="/healthz")).reason == "health-path"
    assert pipeline.process(_value(path="/drop/me")).reason == "unrouted"
    first = pipeline.process(_value(path="/dup", body=b"same"))
    second = pipeline.process(_value(path="/dup", body=b"same"))
    assert (first.kind, second.kind, second.reason) == ("out", "drop", "duplicate")
    default = pipeline.process(_value(path="/other"))
    assert default.topic == Settings.load(env={}).topics.mirror


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "not-json"),
        (None, "not-json"),
        (b"[1,2]", "bad-type"),
        (orjson.dumps({"v": 2}), "unsupported-version"),
        (orjson.dumps({"v": 1, "id": "x"}), "missing-field"),
    ],
)
def test_malformed_records_go_to_dlq(pipeline: Pipeline, value: bytes | None, reason: str) -> None:
    out = pipeline.process(value)
    assert (out.kind, out.reason) == ("dlq", reason) and out.error


def test_bad_base64_and_scrub_failure_go_to_dlq(pipeline: Pipeline) -> None:
    doc = orjson.loads(_value())
    doc["body"] = "***"
    assert pipeline.process(orjson.dumps(doc)).reason == "bad-base64"
    env = Envelope(method="POST", path="/br", headers=[("content-encoding", "br")], body=b"x")
    out = pipeline.process(encode(env))
    assert (out.kind, out.reason) == ("dlq", "scrub-failed")
    headers = dict(dlq_headers(out, "captured", 2, 41))
    assert headers["shadowtap-dlq-reason"] == b"scrub-failed"
    assert headers["shadowtap-source-offset"] == b"41"


def test_same_record_redelivered_is_not_a_duplicate(pipeline: Pipeline) -> None:
    value = _value(path="/redelivered", body=b"r")
    assert pipeline.process(value).kind == "out"
    assert pipeline.process(value).kind == "out"
