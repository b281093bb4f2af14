"""Runs over parts of the records, merged, summarise as one run over all of them."""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any

import orjson
import pytest

from shadowtap.diff.latency import LatencyBook
from shadowtap.diff.model import Record, Request
from shadowtap.diff.run import DiffRun, Roles
from shadowtap.diff.summary import Summary
from shadowtap.diff.tally import OTHER_ENDPOINTS, OTHER_FIELDS, Limits
from shadowtap.errors import ConfigError
from tests.unit.diff.sides import NOISE_RULES, ROLES, json_side, rules, three_way_records

RULES = rules(noise=NOISE_RULES)
GOALS = ["mismatch<=0.5%", "*: p99<=1.5x"]
RECORDS = three_way_records(150)


def _run(records: list[Record], roles: Roles = ROLES, limits: Limits | None = None) -> DiffRun:
    run = DiffRun(RULES, roles, limits, drift=roles is ROLES)
    for record in records:
        run.add(record)
    return run


def _plain(summary: Summary, *, samples: bool = True) -> Any:
    """The summary as plain data; without samples where their order legitimately differs."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if samples or k != "samples"}
        if isinstance(value, list | tuple):
            return [strip(v) for v in value]
        return value

    return strip(asdict(summary))


def test_alternate_records_merged_summarise_as_one_run() -> None:
    whole = _run(RECORDS).summary(GOALS)
    states = [_run(RECORDS[0::2]).state(), _run(RECORDS[1::2]).state()]
    merged = DiffRun.merged(states, RULES, ROLES).summary(GOALS)
    assert _plain(merged, samples=False) == _plain(whole, samples=False)
    # Not vacuous: verdicts, rates, latency and goals are all there to compare.
    regression = merged.view("regression")
    assert regression is not None and {v.name for v in merged.views} >= {"drift:v2"}
    users = next(e for e in regression.endpoints if e.endpoint == "GET /users/{id}")
    assert users.mismatch_rate == 1.0 and any(f.verdict == "noise" for f in users.fields)
    assert {"regression", "noise-class"} <= {f.verdict for f in users.fields}
    assert merged.latency[0].ratios and merged.goals and merged.totals.compared == 150


def test_a_prefix_merged_with_its_suffix_is_the_same_summary_samples_and_all() -> None:
    whole = _run(RECORDS).summary(GOALS)
    run = _run(RECORDS[:61])
    run.merge(_run(RECORDS[61:]).state())
    assert _plain(run.summary(GOALS)) == _plain(whole)


def test_state_survives_json_and_merges_after_it() -> None:
    state = _run(RECORDS[:40]).state()
    assert orjson.loads(orjson.dumps(state)) == state
    run = _run(RECORDS[40:])
    run.merge(orjson.loads(orjson.dumps(state)))
    twice = DiffRun.merged([orjson.loads(orjson.dumps(run.state()))], RULES, ROLES)
    assert _plain(twice.summary(GOALS), samples=False) == _plain(
        _run(RECORDS).summary(GOALS), samples=False
    )


def test_latency_state_rebuilds_the_same_sketches() -> None:
    """Pins the private fields the sketches are read and rebuilt from (latency.py)."""
    rng = random.Random(3)
    book = LatencyBook()
    for i in range(2000):
        book.add(f"GET /e{i % 3}", "v2", rng.lognormvariate(2, 1))
    book.add("GET /e0", "v1", 0.0)
    book.add("GET /e0", "v1", -1.0)  # clamped to 0: the zero count
    state = orjson.loads(orjson.dumps(book.state()))
    rebuilt = LatencyBook()
    rebuilt.merge(state)
    assert rebuilt.state() == book.state()
    assert rebuilt.summarize("v1", "v2") == book.summarize("v1", "v2")
    (e0,) = (row for row in rebuilt.summarize() if row.endpoint == "GET /e0")
    assert e0.sides["v1"].count == 2 and e0.sides["v2"].count == 667 and e0.sides["v2"].p99 > 0


def _records(
    docs: list[tuple[str, dict[str, Any], dict[str, Any]]], first: int = 0
) -> list[Record]:
    return [
        Record(Request(str(first + i), "GET", path), {"a": json_side(a), "b": json_side(b)})
        for i, (path, a, b) in enumerate(docs)
    ]


def _capped(limits: Limits, one: list[Record], two: list[Record]) -> Summary:
    """Merged summary of two capped runs; asserts it counts as one run over both would."""
    merged = _run(one, Roles("a", "b"), limits)
    merged.merge(_run(two, Roles("a", "b"), limits).state())
    summary = merged.summary()
    whole = _run(one + two, Roles("a", "b"), limits).summary()
    assert _plain(summary, samples=False) == _plain(whole, samples=False)
    return summary


def test_fields_past_the_cap_merge_into_other_fields() -> None:
    def docs(prefix: str, n: int = 5) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        names = [f"{prefix}{i}" for i in range(n)]
        return [("/a", dict.fromkeys(names, 1), dict.fromkeys(names, 2))] * 4

    summary = _capped(Limits(fields=3), _records(docs("f")), _records(docs("g"), 4))
    (ep,) = summary.views[0].endpoints
    fields = {f.field: f for f in ep.fields}
    assert set(fields) == {"$.f0", "$.f1", "$.f2", OTHER_FIELDS}
    # f3, f4 in four records; g0..g4 in four more: all counted under (other fields).
    assert ep.fields_capped == fields[OTHER_FIELDS].differences == 4 * 2 + 4 * 5
    assert ep.mismatch_rate == 1.0 and ep.mismatch_exact
    # The other's (other fields) into a full table without one: made, not capped twice.
    summary = _capped(Limits(fields=3), _records(docs("f", 3)), _records(docs("f"), 4))
    (ep,) = summary.views[0].endpoints
    assert len(ep.fields) == 4 and ep.fields_capped == 4 * 2


def test_endpoints_past_the_cap_merge_into_other_endpoints() -> None:
    def docs(paths: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        return [(f"/{p}", {"v": 1}, {"v": 2}) for p in paths for _ in range(2)]

    summary = _capped(Limits(endpoints=2), _records(docs("abc")), _records(docs("def"), 6))
    view = summary.views[0]
    assert {e.endpoint for e in view.endpoints} == {"GET /a", "GET /b", OTHER_ENDPOINTS}
    other = next(e for e in view.endpoints if e.endpoint == OTHER_ENDPOINTS)
    assert view.endpoints_capped == other.compared == 8


def test_samples_stay_capped_own_first() -> None:
    docs = [("/a", {"v": 1}, {"v": 2})] * 3
    summary = _capped(Limits(samples=2), _records(docs[:1]), _records(docs, 1))
    (field,) = summary.views[0].endpoints[0].fields
    assert field.differences == 4 and [s.id for s in field.samples] == ["0", "1"]


def test_signatures_past_the_cap_count_as_unsigned() -> None:
    x = [("/a", {"x": 1, "y": 1}, {"x": 2, "y": 1})] * 2
    y = [("/a", {"x": 1, "y": 1}, {"x": 1, "y": 2})] * 3
    summary = _capped(Limits(signatures=1), _records(x), _records(y, 2))
    (ep,) = summary.views[0].endpoints
    assert (ep.compared, ep.mismatched, ep.mismatch_exact) == (5, 5, False)


def test_a_state_of_other_roles_drift_or_version_is_refused() -> None:
    state = _run(RECORDS[:3]).state()
    with pytest.raises(ConfigError, match="roles"):
        DiffRun(RULES, Roles("v1-a", "v2")).merge(state)
    with pytest.raises(ConfigError, match=r"drift.: True} into a run with .*drift.: False"):
        DiffRun(RULES, ROLES, drift=False).merge(state)
    with pytest.raises(ConfigError, match="version 1 diff state"):
        DiffRun(RULES, ROLES).merge({**state, "version": 2})
