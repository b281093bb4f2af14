"""The demo's verdict, from traffic and topics built in memory (no broker, no processes)."""

from __future__ import annotations

from pathlib import Path

import orjson

from shadowtap.demo.report import build_report, escape, render_html, write_report
from shadowtap.demo.traffic import Tally, Traffic
from shadowtap.envelope import Envelope, Response, encode


def _order(rid: str, body: bytes) -> Envelope:
    return Envelope(
        id=rid, method="POST", path="/api/orders", body=body, response=Response(status=201)
    )


def test_a_planted_value_in_a_mirrored_body_fails_the_pii_check() -> None:
    traffic = Traffic(sent=2, planted=["4111111111111111"])
    traffic.by_kind["order"] = 2
    tally = Tally()
    for env in (_order("a", b'{"card": "<card>"}'), _order("b", b'{"card": "4111111111111111"}')):
        tally.captured[env.id] = tally.mirrored[env.id] = env
        tally.mirrored_raw.append(encode(env))  # the body is base64 in the record
        tally.results[env.id] = {"id": env.id, "status": 201 if env.id == "a" else 500}
    report = build_report(traffic, tally, {"verified": 2, "emails_blocked": 1})
    assert report["leaked_pii_values"] == ["4111111111111111"]
    assert report["checks"]["no planted PII in the mirror topic"] is False
    assert report["passed"] is False
    assert report["checks"]["staging's guard trusted every replayed request"] is True
    assert report["checks"]["no order e-mail left staging (blocked by the guard)"] is True
    unguarded = build_report(traffic, tally, {"verified": 0, "emails_blocked": 0})
    assert unguarded["checks"]["staging's guard trusted every replayed request"] is False
    assert unguarded["checks"]["no order e-mail left staging (blocked by the guard)"] is False
    assert report["status_differences"] == [
        {"id": "b", "request": "POST /api/orders", "production": 201, "staging": 500}
    ]


def test_every_value_is_escaped_and_only_the_verdicts_are_markup(tmp_path: Path) -> None:
    report = {
        "passed": True,
        "checks": {"<span onmouseover=alert(1)>health checks filtered": True},
        **dict.fromkeys(("sent", "captured", "mirrored", "replayed", "dead_lettered"), 1),
        "side_effects_blocked": {"order_emails": 1},
        "status_differences": [
            {"request": "GET /?q=<script>", "production": 200, "staging": "<b>"}
        ],
        "status_difference_count": 1,
        "sample_mirrored_request": {"body": "</pre><script>"},
    }
    page = render_html(report)
    assert "<span onmouseover" not in page and "<script>" not in page and "<b>" not in page
    assert "&lt;span onmouseover=alert(1)&gt;health checks filtered" in page
    assert "<span class=ok>pass</span>" in page
    assert escape(escape("<i>")) == "&lt;i&gt;"  # escaped once, never twice
    json_path, html_path = write_report(report, tmp_path)
    assert orjson.loads(json_path.read_bytes()) == report
    assert html_path.read_text() == page
