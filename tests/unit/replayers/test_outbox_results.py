"""What a result holds: the target's answer scrubbed like the mirror, and production's answer.

The last tests are the issue's: a production response scrubbed with the same keyed
pseudonyms as the request equals a staging response that echoes the pseudonymised request,
and equals one that staging serves from its copy of production's data.
"""

from __future__ import annotations

import orjson
import pytest

from shadowtap import results
from shadowtap.config import Settings
from shadowtap.envelope import Envelope, Response, decode, encode
from shadowtap.processors.pipeline import Pipeline
from shadowtap.replayers.outbox import Outbox
from shadowtap.results import Delivery

EMAIL = "jane.doe@shopmail.com"
SETTINGS = Settings.load(env={}, overrides={"processor": {"scrub_key": "outbox-test"}})


def _outbox(settings: Settings = SETTINGS) -> Outbox:
    return Outbox(settings, target="staging", finish=lambda _item: None)


def _json(doc: object) -> bytes:
    return orjson.dumps(doc)


def _captured(request: dict[str, str], response: dict[str, str]) -> Envelope:
    return Envelope(
        "POST",
        "/api/profile",
        headers=[("content-type", "application/json")],
        body=_json(request),
        body_size=len(_json(request)),
        response=Response(200, [("content-type", "application/json")], _json(response), 7.5),
    )


def _mirrored(env: Envelope) -> Envelope:
    """The record as the processor writes it to the mirror (scrubbed)."""
    out = Pipeline(SETTINGS).process(encode(env), env.id.encode())
    assert out.kind == "out", out.error
    return decode(out.value)


def test_a_result_carries_the_production_response_and_capture_time() -> None:
    env = Envelope("GET", "/api/cart", ts=1_732_400_000_000)
    env.response = Response(200, [("x-a", "1")], b'{"cart": 1}', 3.25, 11)
    result = _outbox().result(env, Delivery(status=200, body=b'{"cart": 1}', body_size=11))
    assert result.captured == env.ts
    assert result.production == Response(200, [("x-a", "1")], b'{"cart": 1}', 3.25, 11, False)
    read = results.decode(results.encode(result))
    assert read == result


def test_a_record_without_production_response_has_none() -> None:
    result = _outbox().result(Envelope("GET", "/x"), Delivery(status=200))
    assert result.production is None
    assert b"production" not in results.encode(result)


def test_production_body_is_cut_to_the_result_limit_and_marked() -> None:
    settings = Settings.load(env={}, overrides={"replayer": {"result_body_limit": 4}})
    env = Envelope("GET", "/x", response=Response(200, [], b"0123456789", 1.0, 10))
    production = _outbox(settings).result(env, Delivery(status=200)).production
    assert production is not None
    assert (production.body, production.body_size, production.truncated) == (b"0123", 10, True)


def test_capture_and_results_keep_the_same_body_size() -> None:
    s = Settings()
    assert s.replayer.result_body_limit == s.capture.max_response_body == 64 * 1024


def test_the_targets_answer_is_scrubbed_before_it_is_stored() -> None:
    delivery = Delivery(
        status=200,
        headers=[("set-cookie", "sid=s3cr3t; Path=/"), ("content-encoding", "gzip")],
        body=_json({"email": EMAIL, "note": f"write to {EMAIL}"}),
    )
    result = _outbox().result(Envelope("GET", "/me"), delivery)
    assert EMAIL.encode() not in result.body
    assert "s3cr3t" not in str(result.headers)
    # The sender inflated the body: the stored headers no longer claim it is gzip.
    assert [k for k, _ in result.headers] == ["set-cookie"]


def test_a_response_that_cannot_be_scrubbed_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = _outbox()
    scrubber = outbox._scrubber
    assert scrubber is not None

    def broken(*_args: object, **_kwargs: object) -> dict[str, int]:
        from shadowtap.errors import ScrubError

        raise ScrubError("cannot")

    monkeypatch.setattr(scrubber, "scrub_response", broken)
    result = outbox.result(Envelope("GET", "/me"), Delivery(status=200, body=EMAIL.encode()))
    assert (result.status, result.body, result.headers, result.truncated) == (200, b"", [], True)
    assert outbox.unscrubbed == 1


def test_without_results_nothing_is_scrubbed() -> None:
    settings = Settings.load(env={}, overrides={"replayer": {"results": False}})
    assert _outbox(settings)._scrubber is None


def test_an_echo_of_the_pseudonymised_request_equals_the_scrubbed_production_answer() -> None:
    mirrored = _mirrored(_captured({"email": EMAIL}, {"email": EMAIL, "status": "saved"}))
    assert mirrored.response is not None and EMAIL.encode() not in mirrored.response.body
    pseudonym = orjson.loads(mirrored.body)["email"]
    assert pseudonym != EMAIL
    # Staging saves what it was sent and echoes it back.
    echo = _json({"email": pseudonym, "status": "saved"})
    result = _outbox().result(mirrored, Delivery(status=200, body=echo))
    assert result.production is not None
    assert result.body == result.production.body == echo


def test_staging_serving_its_copy_of_production_data_equals_production_too() -> None:
    # Staging's database is a copy of production's: it answers with the real address,
    # scrubbed by the replayer with the processor's keys into the same pseudonym.
    mirrored = _mirrored(_captured({"id": "7"}, {"id": "7", "email": EMAIL}))
    answer = _json({"id": "7", "email": EMAIL})
    result = _outbox().result(mirrored, Delivery(status=200, body=answer))
    assert result.production is not None
    assert EMAIL.encode() not in result.body
    assert result.body == result.production.body
