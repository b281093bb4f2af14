"""What ``shadowtap dlq`` shows and chooses, from DLQ records built in memory (no broker)."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadowtap import dlq
from shadowtap.clock import parse_since
from shadowtap.config import Settings
from shadowtap.deadletters import Letter, Marker, Selection, newest, parse_marker
from shadowtap.dlqviews import describe, human_age, stats
from shadowtap.envelope import Envelope, Response, encode
from shadowtap.errors import ConfigError
from shadowtap.redrive import Route, redriven_headers, route

NOW = 1_732_400_000_000
HOUR = 3_600_000
MARKER_KEYS = ["state", "to", "at", "partition", "offset", "from", "0", "1"]
SECRETS = ("jane@example.com", "555-0142", "10.1.2.3", "s3cr3t", "card-4111", "bug quoting")


def _letter(
    stage: str, value: bytes, *, reason: str = "r", group: str = "", age_ms: int = 0, at: int = 0
) -> Letter:
    why = dlq.DeadLetter(
        stage, reason, "bug quoting s3cr3t", "src", 1, 2, target="t" if group else "", group=group
    )
    return Letter("dlq", 0, at, NOW - age_ms, b"k", value, why, "id")


def _captured() -> bytes:
    return encode(
        Envelope(
            method="POST",
            path="/users/jane@example.com",
            query="phone=555-0142",
            host="shop.example",
            headers=[("content-type", "application/json"), ("x-token", "s3cr3t")],
            body=b'{"card": "card-4111"}',
            client="10.1.2.3",
            response=Response(201, [("set-cookie", "s3cr3t")], b"jane@example.com"),
            meta={"principal": "s3cr3t"},
        )
    )


@pytest.mark.parametrize("stage", [dlq.PROCESSOR, "", "something-new"])
def test_unscrubbed_values_are_hidden_unless_asked_for(stage: str) -> None:
    letter = _letter(stage, _captured())
    hidden = orjson.dumps(describe(letter, None, show_sensitive=False, now_ms=NOW)).decode()
    for secret in SECRETS:
        assert secret not in hidden
    for harmless in ("POST", "shop.example", "x-token", "content-type", '"status":201'):
        assert harmless in hidden
    shown = orjson.dumps(describe(letter, None, show_sensitive=True, now_ms=NOW)).decode()
    for secret in SECRETS:
        assert secret in shown


def test_a_value_that_does_not_decode_is_hidden_whole() -> None:
    letter = _letter(dlq.PROCESSOR, b"not json jane@example.com s3cr3t")
    out = describe(letter, None, show_sensitive=False, now_ms=NOW)
    assert out["record"] == {"decodes": False, "why": "not-json", "value_size": 32}
    assert out["error"] is None and "value" in out["hidden"]
    revealed = describe(letter, None, show_sensitive=True, now_ms=NOW)
    assert "s3cr3t" in revealed["record"]["value"] and "s3cr3t" in revealed["error"]


def test_a_replayer_record_is_scrubbed_data_and_shown_whole() -> None:
    letter = _letter(dlq.REPLAYER, _captured(), group="staging")
    marker = Marker("done", "retry.staging", NOW, partition=1, offset=9)
    out = describe(letter, marker, show_sensitive=False, now_ms=NOW + 5000)
    assert "hidden" not in out and out["error"] == "bug quoting s3cr3t"
    assert (out["group"], out["target"], out["age_s"]) == ("staging", "t", 5)
    assert out["record"]["url"] == "http://shop.example/users/jane@example.com?phone=555-0142"
    assert out["redriven"] == {
        "state": "done",
        "to": "retry.staging",
        "at": NOW,
        "partition": 1,
        "offset": 9,
    }


def test_stats_count_by_stage_reason_group_and_age() -> None:
    found = [
        _letter(dlq.REPLAYER, b"", reason="connect", group="g", age_ms=10, at=1),
        _letter(dlq.REPLAYER, b"", reason="connect", group="g", age_ms=2 * HOUR, at=2),
        _letter(dlq.REPLAYER, b"", reason="connect", group="g", age_ms=9 * 24 * HOUR, at=3),
        _letter(dlq.PROCESSOR, b"", reason="not-json", age_ms=30 * HOUR, at=4),
    ]
    marks = {
        found[0].coordinates: Marker("done", "x", NOW),
        found[1].coordinates: Marker("sending", "x", NOW),
    }
    rows = stats(found, marks, NOW)
    assert [(r.stage, r.reason, r.group, r.count, r.redriven) for r in rows] == [
        ("replayer", "connect", "g", 3, 1),
        ("processor", "not-json", "", 1, 0),
    ]
    assert rows[0].ages == {"<1h": 1, "<1d": 1, "<7d": 0, ">=7d": 1}
    assert rows[1].ages == {"<1h": 0, "<1d": 0, "<7d": 1, ">=7d": 0}
    assert (rows[0].oldest_ms, rows[0].newest_ms) == (NOW - 9 * 24 * HOUR, NOW - 10)

    picked = newest(found, Selection(reasons=frozenset({"connect"})), 2)
    assert [x.offset for x in picked] == [1, 2]
    assert [x.offset for x in newest(found, Selection(stage=dlq.PROCESSOR), 5)] == [4]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - 90_000),
        ("30m", NOW - 30 * 60_000),
        ("2h", NOW - 2 * HOUR),
        ("1.5d", NOW - 36 * HOUR),
        ("1w", NOW - 7 * 24 * HOUR),
        ("2024-11-23T22:13:20+00:00", NOW),
        ("2024-11-23T22:13:20", NOW),  # no zone: UTC
        ("2024-11-24T00:13:20+02:00", NOW),
    ],
)
def test_since(text: str, expected: int) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("bad", ["yesterday", "2h ago", "-1h", ""])
def test_since_says_what_it_takes(bad: str) -> None:
    with pytest.raises(ConfigError, match="30m, 2h, 7d"):
        parse_since(bad, NOW)


def test_ages_read_at_a_glance() -> None:
    assert [human_age(s) for s in (5, 125, 3 * 3600 + 300, 2 * 86_400 + 4 * 3600)] == [
        "5s",
        "2m",
        "3h05m",
        "2d04h",
    ]


def test_each_stage_goes_back_where_it_failed() -> None:
    s = Settings.load(env={})
    assert route(_letter(dlq.PROCESSOR, b""), s) == Route(
        "shadowtap.captured", "shadowtap-processor", dlq.PROCESSOR
    )
    assert route(_letter(dlq.REPLAYER, b"", group="dr-site"), s) == Route(
        "shadowtap.retry.dr-site", "dr-site.retry", dlq.REPLAYER
    )
    assert route(_letter(dlq.REPLAYER, b""), s) == "no replayer group in its headers"
    assert "cannot name a retry topic" in str(route(_letter(dlq.REPLAYER, b"", group="a/b"), s))
    assert route(_letter("", b""), s) == "no stage in its headers"
    assert route(_letter("diff", b""), s) == "unknown stage 'diff'"


def test_a_redriven_record_says_where_it_came_from() -> None:
    letter = _letter(dlq.REPLAYER, _captured(), group="g")
    assert redriven_headers(letter) == [
        ("method", b"POST"),
        ("path", b"/users/jane@example.com"),
        ("content-type", b"application/json"),
        ("shadowtap-redriven-from", b"dlq:0:0"),
    ]
    assert redriven_headers(_letter(dlq.REPLAYER, b"{}")) == [
        ("shadowtap-redriven-from", b"dlq:0:0")
    ]


@given(
    st.binary(max_size=200)
    | st.builds(
        orjson.dumps,
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(st.sampled_from(MARKER_KEYS), c, max_size=5)
            ),
            max_leaves=8,
        ),
    )
)
def test_any_marker_value_is_read_or_skipped(value: bytes) -> None:
    marker = parse_marker(value)
    assert marker is None or isinstance(marker, Marker)


@given(st.text(max_size=40))
def test_since_takes_any_text_or_says_why_not(text: str) -> None:
    with contextlib.suppress(ConfigError):
        assert isinstance(parse_since(text, NOW), int)


def test_markers_round_trip() -> None:
    for marker in (
        Marker("sending", "shadowtap.captured", NOW, starts={0: 5, 2: 7}),
        Marker("done", "shadowtap.retry.g", NOW, partition=2, offset=8),
    ):
        assert parse_marker(orjson.dumps(marker.to_json())) == marker
