"""The diff consumer's pure step: results in (as on the wire), records paired and compared."""

from __future__ import annotations

import base64

import orjson

from shadowtap import results
from shadowtap.config import Settings
from shadowtap.diff.consumer import DiffConsumer
from shadowtap.diff.run import DiffRun, Mismatch, Roles
from shadowtap.diff.stage import DiffMetrics, mismatch_record
from shadowtap.diff.summary import Sample
from shadowtap.envelope import Response

JSON = [("content-type", "application/json")]
TARGETS = ("v1-a", "v1-b", "v2")


def _result(
    rid: str,
    target: str,
    body: dict[str, object],
    *,
    captured: int,
    status: int | None = 200,
    production: dict[str, object] | None = None,
) -> bytes:
    prod = None
    if production is not None:
        prod = Response(200, JSON, orjson.dumps(production), 1.0, len(orjson.dumps(production)))
    raw = orjson.dumps(body) if status is not None else b""
    return results.encode(
        results.Result(
            id=rid,
            target=target,
            method="GET",
            path="/users/42",
            status=status,
            headers=JSON if status is not None else [],
            body=raw,
            body_size=len(raw),
            duration_ms=2.0,
            captured=captured,
            production=prod,
            error_kind="" if status is not None else "connect",
        )
    )


def _consumer(roles: Roles | None = None, grace_ms: int = 1_000) -> DiffConsumer:
    run = DiffRun(roles=roles or Roles("v1-a", "v2", secondary="v1-b"))
    targets = roles.names if roles is not None else TARGETS
    return DiffConsumer(Settings(), run, targets, grace_ms=grace_ms, metrics=DiffMetrics())


def test_results_of_three_targets_are_paired_and_a_regression_found() -> None:
    consumer = _consumer()
    for i in range(20):
        rid = f"r{i}"
        consumer.offer(_result(rid, "v1-a", {"n": 1}, captured=i))
        consumer.offer(_result(rid, "v1-b", {"n": 1}, captured=i))
        consumer.offer(_result(rid, "v2", {"n": "1"}, captured=i))
    summary = consumer.summary()
    assert summary.mode == "three-way"
    assert (summary.totals.records, summary.totals.compared, summary.totals.unpaired) == (20, 20, 0)
    regression = summary.view("regression")
    assert regression is not None
    [endpoint] = regression.endpoints
    assert [(f.field, f.verdict) for f in endpoint.fields] == [("$.n", "regression")]


def test_first_result_wins_and_later_ones_count_as_redeliveries() -> None:
    consumer = _consumer()
    consumer.offer(_result("r", "v1-a", {"n": 1}, captured=1))
    consumer.offer(_result("r", "v1-a", {"n": 2}, captured=1))  # before the record completes
    consumer.offer(_result("r", "v1-b", {"n": 1}, captured=1))
    consumer.offer(_result("r", "v2", {"n": 1}, captured=1))
    consumer.offer(_result("r", "v2", {"n": 9}, captured=1))  # after it completed
    summary = consumer.summary()
    assert summary.totals.redeliveries == {"v1-a": 1, "v2": 1}
    assert consumer.metrics is not None
    sample = consumer.metrics.registry.get_sample_value
    assert sample("shadowtap_diff_redeliveries_total", {"target": "v2"}) == 1
    assert sample("shadowtap_diff_results_total", {"target": "v2"}) == 2
    assert sample("shadowtap_diff_records_total", {"outcome": "paired"}) == 1
    assert sample("shadowtap_diff_pending") == 0
    assert summary.totals.compared == 1
    regression = summary.view("regression")
    assert regression is not None and not regression.endpoints[0].fields  # first ones compared


def test_a_lagging_target_delays_pairing_and_unpaired_records_are_reported() -> None:
    consumer = _consumer(grace_ms=1_000)
    for i in range(50):  # v1-a and v1-b run ahead; v2 lags behind at the start
        consumer.offer(_result(f"r{i}", "v1-a", {}, captured=i * 100))
        consumer.offer(_result(f"r{i}", "v1-b", {}, captured=i * 100))
    assert consumer.summary().totals.records == 0  # nothing declared unpaired yet
    consumer.offer(_result("r0", "v2", {}, captured=0))
    # v2 lost r1..r9; it answers the rest, moving past them by more than the grace period.
    for i in range(10, 50):
        consumer.offer(_result(f"r{i}", "v2", {}, captured=i * 100))
    assert consumer.summary().totals.unpaired == 9
    consumer.finish()
    totals = consumer.summary().totals
    assert (totals.records, totals.compared, totals.unpaired) == (50, 41, 9)


def test_two_way_drift_against_production_and_records_without_one() -> None:
    consumer = _consumer(Roles("v1-a", "v2"))
    consumer.offer(_result("p", "v1-a", {"n": 1}, captured=1, production={"n": 5}))
    consumer.offer(_result("p", "v2", {"n": 1}, captured=1, production={"n": 5}))
    consumer.offer(_result("c", "v1-a", {"n": 1}, captured=2))  # from shadowtap collect
    consumer.offer(_result("c", "v2", {"n": 1}, captured=2))
    summary = consumer.summary()
    assert summary.mode == "two-way" and summary.totals.no_production == 1
    drift = summary.view("drift:v2")
    assert drift is not None and drift.label == "data drift: production vs v2"
    [endpoint] = drift.endpoints
    assert endpoint.no_production == 1 and endpoint.compared == 1
    assert [f.field for f in endpoint.fields] == ["$.n"]


def test_failed_deliveries_are_counted_apart_never_diffed() -> None:
    consumer = _consumer()
    consumer.offer(_result("r", "v1-a", {"n": 1}, captured=1))
    consumer.offer(_result("r", "v1-b", {"n": 1}, captured=1))
    consumer.offer(_result("r", "v2", {}, captured=1, status=None))
    totals = consumer.summary().totals
    assert totals.compared == 0 and totals.incomplete == {"delivery-error": 1}


def test_a_result_that_cannot_be_read_is_counted_and_skipped() -> None:
    consumer = _consumer()
    assert consumer.offer(b"not json") == []
    assert consumer.bad == 1 and consumer.summary().totals.records == 0


def test_mismatch_records_carry_no_secret_header_values() -> None:
    sample = Sample("r", "GET", "/x", "header:set-cookie", "value", "sid=a", "sid=b")
    plain = Sample("r", "GET", "/x", "$.n", "type", 1, "1")
    secret = orjson.loads(
        mismatch_record(
            Mismatch("regression", "GET /x", "header:set-cookie", sample), frozenset({"set-cookie"})
        )
    )
    assert (secret["a"], secret["b"], secret["field"]) == (None, None, "header:set-cookie")
    shown = orjson.loads(mismatch_record(Mismatch("regression", "GET /x", "$.n", plain)))
    assert (shown["a"], shown["b"], shown["id"], shown["v"]) == (1, "1", "r", 1)


def _cut(value: bytes, **changes: object) -> bytes:
    raw = orjson.loads(value)
    raw.update(changes)
    return orjson.dumps(raw)


def test_a_request_not_all_in_the_record_is_counted_apart() -> None:
    consumer = _consumer()
    for target in TARGETS:
        consumer.offer(_cut(_result("r", target, {"n": 1}, captured=1), incomplete="body-unread"))
    totals = consumer.summary().totals
    assert totals.compared == 0 and totals.incomplete == {"body-unread": 1}


def test_a_body_cut_on_one_side_is_compared_up_to_what_both_kept_and_marked_partial() -> None:
    consumer = _consumer(Roles("v1-a", "v2"))
    long = {"items": list(range(200))}
    whole = _result("r", "v1-a", long, captured=1)
    raw = orjson.loads(_result("r", "v2", long, captured=1))
    kept = orjson.dumps(long)[:100]  # v2's answer was cut at a limit: its first 100 bytes
    raw |= {"body": base64.b64encode(kept).decode(), "truncated": True}
    consumer.offer(whole)
    consumer.offer(orjson.dumps(raw))
    summary = consumer.summary()
    assert (summary.totals.compared, summary.totals.partial) == (1, 1)
    regression = summary.view("regression")
    assert regression is not None and not regression.endpoints[0].fields  # the same, as far as kept
