"""Noise rules and comparators, scoped globally, per endpoint and per target."""

from __future__ import annotations

from typing import Any

from shadowtap.diff.compare import Differ
from tests.unit.diff.sides import json_side, rules


def _found(
    a: Any, b: Any, *noise: dict[str, Any], endpoint: str = "", target: str = "", **extra: Any
) -> list[str]:
    differ = Differ(rules(noise=list(noise), **extra))
    result = differ.compare(json_side(a), json_side(b), endpoint, target)
    return [f"{d.where}:{d.kind.value}" for d in result.real]


def test_ignore_covers_the_place_and_below() -> None:
    a = {"meta": {"trace": "a", "host": {"n": 1}}, "x": 1}
    b = {"meta": {"trace": "b", "host": {"n": 2}, "new": 1}, "x": 1}
    assert _found(a, b, {"path": "$.meta"}) == []
    assert _found(a, b, {"path": "$.meta.trace"}) == ["$.meta.host.n:value", "$.meta.new:added"]


def test_recursive_descent_through_arrays_of_objects() -> None:
    a = {"orders": [{"lines": [{"sku": "a", "updated": "t1"}, {"sku": "b", "updated": "t2"}]}]}
    b = {"orders": [{"lines": [{"sku": "a", "updated": "t3"}, {"sku": "c", "updated": "t4"}]}]}
    assert _found(a, b, {"path": "$..updated"}) == ["$.orders[0].lines[1].sku:value"]


def test_numeric_tolerance_absolute_and_relative() -> None:
    a, b = {"p": 10.0, "q": 1000.0}, {"p": 10.004, "q": 1004.0}
    assert _found(a, b, {"path": "$.p", "comparator": "numeric", "tolerance": 0.01}) == [
        "$.q:value"
    ]
    assert _found(a, b, {"path": "$.*", "comparator": "numeric", "relative": 0.005}) == []
    beyond = {"p": 10.5, "q": 1000.0}
    assert _found(a, beyond, {"path": "$.p", "comparator": "numeric", "tolerance": 0.01}) == [
        "$.p:value"
    ]
    # A number is never within tolerance of a string.
    assert _found(
        a, {"p": "10.0", "q": 1000.0}, {"path": "$.p", "comparator": "numeric", "tolerance": 1}
    ) == ["$.p:type"]


def test_timestamps_within_seconds() -> None:
    a = {"at": "2024-05-01T10:00:00Z", "epoch": 1714557600, "http": "Wed, 01 May 2024 10:00:00 GMT"}
    b = {
        "at": "2024-05-01T12:00:03+02:00",
        "epoch": 1714557604000,
        "http": "Wed, 01 May 2024 10:00:09 GMT",
    }
    rule = {"path": "$.*", "comparator": "timestamp", "seconds": 5}
    assert _found(a, b, rule) == ["$.http:value"]


def test_type_only_and_regex() -> None:
    a, b = {"n": 1, "s": "tmp-abc", "t": "x"}, {"n": 2, "s": "tmp-xyz", "t": 3}
    assert _found(
        a, b, {"path": "$.n", "comparator": "type"}, {"path": "$.t", "comparator": "type"}
    ) == [
        "$.s:value",
        "$.t:type",
    ]
    assert _found(a, b, {"path": "$..*", "comparator": "regex", "pattern": r"tmp-\w+"}) == [
        "$.n:value",
        "$.t:type",
    ]


def test_unordered_arrays_matched_on_a_key() -> None:
    a = {"items": [{"id": 1, "q": 1}, {"id": 2, "q": 2}, {"id": 3, "q": 3}]}
    b = {"items": [{"id": 3, "q": 3}, {"id": 1, "q": 9}, {"id": 4, "q": 4}]}
    rule = {"path": "$.items", "comparator": "unordered", "key": "id"}
    assert _found(a, b, rule) == ["$.items[0].q:value", "$.items[1]:removed", "$.items[2]:added"]


def test_unordered_without_key_keeps_nested_order_semantics() -> None:
    # diffy PR#51: sorting arrays gave false diffs in nested arrays. Here the outer array's
    # order is noise, an inner array's order is not.
    a = {"groups": [{"tags": ["a", "b"]}, {"tags": ["c"]}]}
    shuffled = {"groups": [{"tags": ["c"]}, {"tags": ["a", "b"]}]}
    inner = {"groups": [{"tags": ["c"]}, {"tags": ["b", "a"]}]}
    rule = {"path": "$.groups", "comparator": "unordered"}
    assert _found(a, shuffled, rule) == []
    assert _found(a, inner, rule) == ["$.groups[0]:removed", "$.groups[1]:added"]
    inner_too = {"path": "$.groups[*].tags", "comparator": "unordered"}
    assert _found(a, inner, rule, inner_too) == []


def test_unordered_pairs_elements_that_differ_only_in_noise() -> None:
    a = {
        "l": [
            {"n": "x", "id": "3f1c2a7e-1b2c-4d5e-8f90-1234567890ab"},
            {"n": "y", "id": "4f1c2a7e-1b2c-4d5e-8f90-1234567890ab"},
        ]
    }
    b = {
        "l": [
            {"n": "y", "id": "5f1c2a7e-1b2c-4d5e-8f90-1234567890ab"},
            {"n": "x", "id": "6f1c2a7e-1b2c-4d5e-8f90-1234567890ab"},
        ]
    }
    differ = Differ(rules(noise=[{"path": "$.l", "comparator": "unordered"}]))
    result = differ.compare(json_side(a), json_side(b))
    assert result.real == [] and {d.noise for d in result.differences} == {"uuid"}


def test_new_fields_allowed_globally_or_under_a_path() -> None:
    a, b = {"a": {"x": 1}, "b": {}}, {"a": {"x": 1, "y": 2}, "b": {"z": 1}}
    assert _found(a, b, allow_new_fields=True) == []
    assert _found(a, b, {"path": "$.a", "comparator": "allow-new"}) == ["$.b.z:added"]
    assert _found(b, a, allow_new_fields=True) == ["$.a.y:removed", "$.b.z:removed"]


def test_rules_apply_per_endpoint_and_per_target() -> None:
    a, b = {"v": 1}, {"v": 2}
    per_endpoint = {"path": "$.v", "endpoint": "GET /users/{id}"}
    assert _found(a, b, per_endpoint, endpoint="GET /users/{id}") == []
    assert _found(a, b, per_endpoint, endpoint="POST /users/{id}") == ["$.v:value"]
    any_method = {"path": "$.v", "endpoint": "/users/{id}"}
    assert _found(a, b, any_method, endpoint="POST /users/{id}") == []
    per_target = {"path": "$.v", "target": "v2"}
    assert _found(a, b, per_target, target="v2") == []
    assert _found(a, b, per_target, target="v1-b") == ["$.v:value"]


def test_first_rule_in_file_order_wins() -> None:
    a, b = {"p": 1.0}, {"p": 1.5}
    tight = {"path": "$.p", "comparator": "numeric", "tolerance": 0.1}
    loose = {"path": "$..p", "comparator": "ignore"}
    assert _found(a, b, tight, loose) == ["$.p:value"]
    assert _found(a, b, loose, tight) == []


def test_header_rules() -> None:
    a = json_side(
        {},
        headers=(
            ("X-Trace-Id", "1"),
            ("Last-Modified", "Wed, 01 May 2024 10:00:00 GMT"),
            ("X-Count", "1"),
        ),
    )
    b = json_side(
        {},
        headers=(
            ("X-Trace-Id", "2"),
            ("Last-Modified", "Wed, 01 May 2024 10:00:02 GMT"),
            ("X-Count", "2"),
        ),
    )
    differ = Differ(
        rules(
            noise=[
                {"header": "x-trace-*"},
                {"header": "last-modified", "comparator": "timestamp", "seconds": 5},
            ]
        )
    )
    assert [d.field for d in differ.compare(a, b).real] == ["header:x-count"]
