"""A three-way run names every planted regression and no noise-only field."""

from __future__ import annotations

import random
from typing import Any

from shadowtap.diff.model import Incomplete, Record, Request, Side
from shadowtap.diff.run import DiffRun, Roles
from shadowtap.diff.tally import OTHER_FIELDS, Limits
from tests.unit.diff.sides import NOISE_RULES, ROLES, json_side, rules, three_way_records


def _run(records: list[Record], **rule_data: Any) -> DiffRun:
    run = DiffRun(rules(noise=NOISE_RULES, **rule_data), ROLES)
    for record in records:
        run.add(record)
    return run


def test_planted_regressions_are_named_and_noise_is_not() -> None:
    summary = _run(three_way_records(600)).summary(goals=["mismatch<=0.5%", "*: p99<=1.5x"])
    view = summary.view("regression")
    assert view is not None and view.learned
    flagged = {
        (e.endpoint, f.field, f.verdict)
        for e in view.endpoints
        for f in e.fields
        if f.verdict == "regression"
    }
    assert flagged == {
        ("GET /users/{id}", "$.count", "regression"),
        ("GET /users/{id}", "$.name", "regression"),
        ("GET /users/{id}", "$.steps", "regression"),
        ("GET /users/{id}", "$.discount", "regression"),
        ("GET /orders/{id}", "status", "regression"),
    }
    users = next(e for e in view.endpoints if e.endpoint == "GET /users/{id}")
    verdicts = {f.field: f.verdict for f in users.fields}
    assert verdicts["$.tags"] == "noise"  # shuffled by both baselines
    assert verdicts["$.request_id"] == verdicts["$.generated_at"] == "noise-class"
    assert "$.price" not in verdicts and not any(f.startswith("header:") for f in verdicts)
    kinds = {f.field: set(f.kinds) for f in users.fields if f.verdict == "regression"}
    assert kinds == {
        "$.count": {"type"},
        "$.name": {"removed"},
        "$.steps": {"order"},
        "$.discount": {"value"},
    }
    assert users.mismatch_rate == 1.0 and users.mismatch_exact
    slow = {row.endpoint: row for row in summary.latency}
    assert slow["GET /slow/{id}"].ratios["p99"] > 2.5
    assert slow["GET /users/{id}"].ratios["p99"] < 1.5
    assert "production" in slow["GET /users/{id}"].sides  # shown, never in a ratio
    failed = {(g.goal, g.endpoint) for g in summary.goals if not g.passed}
    assert ("*: p99<=1.5x", "GET /slow/{id}") in failed and ("mismatch<=0.5%", "") in failed
    assert ("*: p99<=1.5x", "GET /users/{id}") not in failed


def test_noise_rules_and_accept_turn_fields_off() -> None:
    run = _run(
        three_way_records(90),
        accept=[{"endpoint": "GET /users/{id}", "field": "$.name", "kind": "removed"}],
    )
    users = next(e for e in run.summary().views[0].endpoints if e.endpoint == "GET /users/{id}")
    assert {f.field: f.verdict for f in users.fields}["$.name"] == "accepted"


def test_drift_views_compare_production_with_each_target() -> None:
    summary = _run(three_way_records(30)).summary()
    names = [v.name for v in summary.views]
    assert names == ["regression", "drift:v1-a", "drift:v1-b", "drift:v2"]
    drift = summary.view("drift:v1-a")
    assert drift is not None and not drift.learned and drift.label.startswith("data drift")
    users = next(e for e in drift.endpoints if e.endpoint == "GET /users/{id}")
    assert {f.verdict for f in users.fields} <= {"noise-class", "difference"}


def test_what_cannot_be_diffed_is_counted_apart() -> None:
    ok = json_side({"a": 1})
    run = DiffRun(rules(), ROLES)
    run.add(Record(Request("1", "GET", "/a"), {"v1-a": ok, "v1-b": ok}, ok))  # no candidate
    run.add(
        Record(
            Request("2", "GET", "/a", incomplete=Incomplete.TRUNCATED),
            {"v1-a": ok, "v1-b": ok, "v2": ok},
            ok,
        )
    )
    failed = Side(None, error_kind="timeout")
    run.add(Record(Request("3", "GET", "/a"), {"v1-a": ok, "v1-b": ok, "v2": failed}, ok))
    unread = Side(200, incomplete=Incomplete.BODY_UNREAD)
    run.add(Record(Request("4", "GET", "/a"), {"v1-a": unread, "v1-b": ok, "v2": ok}, ok))
    run.add(Record(Request("5", "GET", "/a"), {"v1-a": ok, "v1-b": ok, "v2": ok}, None))  # collect
    summary = run.summary(redeliveries={"v2": 2})
    t = summary.totals
    assert (t.records, t.compared, t.unpaired) == (5, 1, 1)
    assert summary.view("regression").endpoints[0].incomplete == {  # type: ignore[union-attr]
        "truncated": 1,
        "delivery-error": 1,
        "body-unread": 1,
    }
    assert t.no_production == 1  # record 5: counted once, whatever the views
    assert t.redeliveries == {"v2": 2}
    assert summary.statuses["v2"]["GET"] == {"2xx": 3, "error": 1}


def test_memory_stays_bounded_under_a_flood_of_unique_fields() -> None:
    limits = Limits(samples=2, fields=20, signatures=8)
    run = DiffRun(rules(), Roles("a", "b"), limits, drift=False)
    rng = random.Random(1)
    for i in range(300):
        keys = {f"field_{rng.getrandbits(40):x}z": 1 for _ in range(3)}
        a = json_side({"x": {**keys, "n": 1}})
        b = json_side({"x": {"n": 2}})
        run.add(Record(Request(str(i), "GET", "/flood"), {"a": a, "b": b}))
    (ep,) = run.summary().views[0].endpoints
    assert len(ep.fields) == 21  # the cap, plus "(other fields)"
    assert any(f.field == OTHER_FIELDS for f in ep.fields)
    assert ep.fields_capped > 800
    assert all(len(f.samples) <= 2 for f in ep.fields)
    assert ep.mismatch_exact and ep.mismatch_rate == 1.0  # capped fields share one signature


def test_past_the_signature_cap_the_mismatch_rate_is_an_upper_bound() -> None:
    run = DiffRun(rules(), Roles("a", "b"), Limits(signatures=1), drift=False)
    docs = [({"x": 1, "y": 1}, {"x": 2, "y": 1}), ({"x": 1, "y": 1}, {"x": 1, "y": 2}), ({}, {})]
    for i, (a, b) in enumerate(docs * 3):
        run.add(Record(Request(str(i), "GET", "/a"), {"a": json_side(a), "b": json_side(b)}))
    (ep,) = run.summary().views[0].endpoints
    assert (ep.compared, ep.mismatched, ep.mismatch_exact) == (9, 6, False)


def test_two_way_run_without_learning_flags_any_real_difference() -> None:
    run = DiffRun(rules(), Roles("old", "new"), drift=False)
    for i in range(10):
        run.add(
            Record(
                Request(str(i), "GET", "/a"),
                {"old": json_side({"v": 1}), "new": json_side({"v": 1 + (i % 2)})},
            )
        )
    (ep,) = run.summary().views[0].endpoints
    assert (ep.mismatched, ep.fields[0].verdict) == (5, "difference")


def test_add_hands_out_at_most_k_samples_per_endpoint_field_and_view() -> None:
    run = DiffRun(rules(), Roles("a", "b"), Limits(samples=2))
    handed = []
    for i in range(10):
        sides = {"a": json_side({"v": 1}), "b": json_side({"v": 2, "w": i})}
        handed += run.add(Record(Request(str(i), "GET", f"/items/{i}"), sides, json_side({"v": 1})))
    per_key: dict[tuple[str, str, str], int] = {}
    for m in handed:
        per_key[(m.view, m.endpoint, m.field)] = per_key.get((m.view, m.endpoint, m.field), 0) + 1
    assert per_key == {
        ("regression", "GET /items/{id}", "$.v"): 2,
        ("regression", "GET /items/{id}", "$.w"): 2,
        ("drift:b", "GET /items/{id}", "$.v"): 2,
        ("drift:b", "GET /items/{id}", "$.w"): 2,
    }
    assert handed[0].sample.a == 1 and handed[0].sample.b == 2 and handed[0].sample.id == "0"
