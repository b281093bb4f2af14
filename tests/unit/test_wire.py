"""Today's wire format, kept as files, through every stage: rolling upgrades stay safe.

tests/fixtures/wire holds records exactly as this version writes them (envelopes with and
without body, response and meta; result records; DLQ headers) and records from a later
version: with fields this one does not know (ignored) and with a newer major version (a
clear error, then the DLQ). The files are never edited: a wire change adds fixtures and
keeps this test passing on the old ones (the rule is in shadowtap.envelope's docstring).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from shadowtap import dlq, results
from shadowtap.config import Settings
from shadowtap.deadletters import Letter
from shadowtap.dlqviews import describe
from shadowtap.envelope import decode, encode
from shadowtap.errors import EnvelopeError
from shadowtap.processors.pipeline import Pipeline, dlq_headers
from shadowtap.replayers.engine import Engine
from shadowtap.replayers.policy import deliver, make_sender

WIRE = Path(__file__).parent.parent / "fixtures" / "wire"
TODAY = [
    "envelope-minimal.json",
    "envelope-full.json",
    "envelope-response-without-body.json",
    "envelope-truncated.json",
]
LATER = "envelope-unknown-fields.json"
UNKNOWN = ("future_field", "future_flag", "future_signature")
EMAIL = "jane@example.com"


def _bytes(name: str) -> bytes:
    return (WIRE / name).read_bytes().strip()


def _headers(name: str) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in orjson.loads(_bytes(name))]


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(Settings.load(env={}, overrides={"processor": {"scrub_key": "wire-test"}}))


class Target:
    """A local HTTP server that records what it is sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append((request.method, request.path_qs, dict(request.headers), body))
        return web.Response(status=200, text="ok", headers={"X-Target": "yes"})


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = Target()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    yield server
    await runner.cleanup()


# -- decode: today's records read the same and are written the same -------------------------


@pytest.mark.parametrize("name", TODAY)
def test_todays_envelopes_are_read_and_written_byte_for_byte(name: str) -> None:
    data = _bytes(name)
    assert encode(decode(data)) == data


def test_what_todays_envelopes_hold() -> None:
    minimal = decode(_bytes("envelope-minimal.json"))
    assert (minimal.body, minimal.response, minimal.meta) == (b"", None, {})
    full = decode(_bytes("envelope-full.json"))
    assert EMAIL.encode() in full.body and full.body_size == len(full.body)
    assert full.headers[2:] == [("x-tag", "a"), ("x-tag", "b")]  # order and duplicates kept
    assert full.response is not None and full.response.body == b'{"cart": 77}'
    assert full.meta == {"session": "5f2b9c", "import": "capture"}
    empty = decode(_bytes("envelope-response-without-body.json"))
    assert empty.response is not None and (empty.response.status, empty.response.body) == (204, b"")
    cut = decode(_bytes("envelope-truncated.json"))
    assert cut.truncated and cut.body_size == 1_048_576 and len(cut.body) == 16


def test_fields_from_a_later_version_are_ignored() -> None:
    later = decode(_bytes(LATER))
    assert later == decode(_bytes("envelope-full.json"))
    assert not any(f.encode() in encode(later) for f in UNKNOWN)


def test_a_newer_major_version_is_refused_clearly() -> None:
    with pytest.raises(EnvelopeError) as info:
        decode(_bytes("envelope-v2.json"))
    assert info.value.reason == "unsupported-version"
    assert str(info.value) == "envelope version 2 is not supported (this shadowtap reads v1)"


# -- the processor --------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*TODAY, LATER])
def test_the_processor_mirrors_them(pipeline: Pipeline, name: str) -> None:
    original = decode(_bytes(name))
    out = pipeline.process(_bytes(name), original.id.encode())
    assert (out.kind, out.topic) == ("out", "shadowtap.mirror"), out.error
    mirrored = decode(out.value)
    assert (mirrored.id, mirrored.ts, mirrored.method) == (
        original.id,
        original.ts,
        original.method,
    )
    assert EMAIL.encode() not in out.value  # scrubbed
    # The processor passes on only what it knows: it cannot scrub a field it does not know.
    assert not any(f.encode() in out.value for f in UNKNOWN)
    assert (mirrored.response is None) == (original.response is None)
    assert (mirrored.body_size, mirrored.truncated) == (original.body_size, original.truncated)


def test_the_processor_dead_letters_a_newer_major_version(pipeline: Pipeline) -> None:
    out = pipeline.process(_bytes("envelope-v2.json"))
    assert (out.kind, out.reason) == ("dlq", "unsupported-version")
    letter = dlq.parse(dlq_headers(out, "shadowtap.captured", 0, 5))
    assert (letter.stage, letter.reason, letter.source) == (
        "processor",
        "unsupported-version",
        "shadowtap.captured:0:5",
    )
    assert "version 2 is not supported" in letter.error


# -- the replayer ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*TODAY, LATER])
async def test_the_replayer_delivers_them_and_records_the_result(
    pipeline: Pipeline, target: Target, name: str
) -> None:
    env = decode(pipeline.process(_bytes(name)).value)  # what a replayer reads from the mirror
    replayer_settings = {"target": target.url + "/shadow", "group": "stg"}
    replayer = Engine(Settings.load(env={}, overrides={"replayer": replayer_settings}))
    if env.truncated:  # by default a record without its whole body is not sent...
        assert replayer.rewriter.blocked(env) == "incomplete"
        # ...unless the operator asks for it to be sent as it is.
        replayer_settings["incomplete"] = "send"
        replayer = Engine(Settings.load(env={}, overrides={"replayer": replayer_settings}))
    assert replayer.rewriter.blocked(env) is None
    sender = make_sender(replayer.settings.replayer)
    try:
        delivery = await deliver(sender, replayer.rewriter.rewrite(env), replayer.policy)
    finally:
        await sender.aclose()
    assert delivery.status == 200 and not delivery.error_kind
    [(method, path_qs, headers, body)] = target.seen
    assert (method, path_qs) == (env.method, "/shadow" + env.target)
    assert headers["X-Shadowtap-Id"] == headers["Idempotency-Key"] == env.id
    assert body == env.body

    written = results.encode(replayer.outbox.result(env, delivery))
    read = results.decode(written)
    assert (read.id, read.group, read.status, read.body) == (env.id, "stg", 200, b"ok")
    assert results.encode(read) == written
    # The production response the record was captured with travels with it.
    assert read.captured == env.ts
    assert (read.production is None) == (env.response is None)
    if env.response is not None and read.production is not None:
        assert (read.production.status, read.production.body) == (
            env.response.status,
            env.response.body,
        )


# -- results --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["result-ok.json", "result-failed.json", "result-with-production.json"]
)
def test_todays_results_are_read_and_written_byte_for_byte(name: str) -> None:
    data = _bytes(name)
    assert results.encode(results.decode(data)) == data


def test_what_todays_results_hold_and_later_fields_are_ignored() -> None:
    ok = results.decode(_bytes("result-ok.json"))
    assert (ok.status, ok.body, ok.ok) == (201, b'{"cart": 78}', True)
    failed = results.decode(_bytes("result-failed.json"))
    assert (failed.status, failed.error_kind, failed.ok) == (None, "connect", False)
    assert results.decode(_bytes("result-unknown-fields.json")) == ok
    with pytest.raises(EnvelopeError) as info:
        results.decode(_bytes("result-v2.json"))
    assert info.value.reason == "bad-result"


# -- DLQ headers ----------------------------------------------------------------------------

PROCESSOR_LETTER = dlq.DeadLetter(
    "processor",
    "scrub-failed",
    "cannot scrub a body with content-encoding 'br'",
    "shadowtap.captured",
    2,
    41,
)
REPLAYER_LETTER = dlq.DeadLetter(
    "replayer",
    "status-503",
    "target answered 503 after 3 attempts",
    "shadowtap.mirror",
    4,
    1234,
    target="staging.internal",
    group="staging",
    attempts=3,
)


@pytest.mark.parametrize(
    ("name", "letter"),
    [("dlq-processor.json", PROCESSOR_LETTER), ("dlq-replayer.json", REPLAYER_LETTER)],
)
def test_todays_dlq_headers_are_read_and_written_byte_for_byte(
    name: str, letter: dlq.DeadLetter
) -> None:
    assert dlq.headers(letter) == _headers(name)
    assert dlq.parse(_headers(name)) == letter


def test_dlq_headers_from_a_later_version_are_read() -> None:
    letter = dlq.parse(_headers("dlq-unknown-headers.json"))
    assert letter == dlq.DeadLetter(
        "replayer",
        "timeout",
        "ReadTimeout: timed out",
        "shadowtap.mirror",
        0,
        7,
        target="dr-site",
        group="dr",
        attempts=1,
    )


def test_the_operator_tool_reads_a_dead_lettered_record_of_today() -> None:
    value = _bytes("envelope-full.json")
    letter = Letter("shadowtap.dlq", 0, 3, 1, b"k", value, PROCESSOR_LETTER, decode(value).id)
    shown = describe(letter, None, show_sensitive=False)
    assert shown["reason"] == "scrub-failed" and shown["source"]["offset"] == 41
    assert EMAIL not in orjson.dumps(shown).decode()
    assert base64.b64encode(value)[:8] not in orjson.dumps(shown)
    assert describe(letter, None, show_sensitive=True)["record"]["id"] == decode(value).id


def test_results_carry_the_production_response_they_are_compared_with() -> None:
    # Added within v1 as optional fields: records without them read as before.
    with_production = results.decode(_bytes("result-with-production.json"))
    ok = results.decode(_bytes("result-ok.json"))
    assert (ok.captured, ok.production) == (0, None)
    assert with_production.captured == 1732400000000
    production = with_production.production
    assert production is not None
    assert (production.status, production.duration_ms) == (200, 4.5)
    assert production.headers[1] == ("date", "Sat, 23 Nov 2024 22:13:20 GMT")
    # A body cut at the limit keeps its original size and says it was cut.
    assert (production.body_size, production.truncated) == (4096, True)
    assert production.body.startswith(b'{"cart": 77')
    # The rest of the record is today's result-ok.json.
    with_production.captured, with_production.production = 0, None
    assert with_production == ok


def test_a_malformed_production_response_is_a_bad_result() -> None:
    raw = orjson.loads(_bytes("result-with-production.json"))
    raw["production"]["status"] = "200"
    with pytest.raises(EnvelopeError) as info:
        results.decode(orjson.dumps(raw))
    assert info.value.reason == "bad-result"
    assert "response.status" in str(info.value)
