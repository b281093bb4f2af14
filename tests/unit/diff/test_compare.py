"""Two sides compared: status, headers, JSON structure, text lines, binary, cut bodies."""

from __future__ import annotations

from shadowtap.diff.compare import Differ
from shadowtap.diff.model import Kind, Side
from tests.unit.diff.sides import json_side, rules


def _kinds(a: object, b: object, **rule_data: object) -> dict[str, str]:
    differ = Differ(rules(**rule_data)) if rule_data else Differ()
    found = differ.compare(json_side(a), json_side(b)).differences
    return {d.where: d.kind.value + (f"/{d.noise}" if d.noise else "") for d in found}


def test_equal_documents_have_no_differences() -> None:
    doc = {"a": [1, {"b": None}], "c": "x"}
    assert Differ().compare(json_side(doc), json_side(dict(doc))).differences == []


def test_key_order_and_number_spelling_are_not_differences() -> None:
    a = Side(200, [("content-type", "application/json")], b'{"a": 1, "b": 2.0}')
    b = Side(200, [("content-type", "application/json")], b'{"b":2,"a":1.0}')
    assert Differ().compare(a, b).differences == []


def test_each_kind_of_json_difference_at_its_path() -> None:
    a = {"v": 1, "t": 1, "gone": 1, "arr": [1, 2, 3], "order": ["x", "y", "z"], "n": {"k": "a"}}
    b = {"v": 2, "t": "1", "new": 1, "arr": [1, 2], "order": ["z", "y", "x"], "n": {"k": "b"}}
    assert _kinds(a, b) == {
        "$.v": "value",
        "$.t": "type",
        "$.gone": "removed",
        "$.new": "added",
        "$.arr": "length",
        "$.order": "order",
        "$.n.k": "value",
    }


def test_true_is_not_one() -> None:
    # Python holds True == 1; JSON does not, and the subtree shortcut must not hide it.
    assert _kinds({"x": {"active": True}}, {"x": {"active": 1}}) == {"$.x.active": "type"}


def test_an_insertion_is_one_length_difference() -> None:
    a = {"l": [{"id": 1}, {"id": 2}, {"id": 3}]}
    b = {"l": [{"id": 0}, {"id": 1}, {"id": 2}, {"id": 3}]}
    assert _kinds(a, b) == {"$.l": "length"}


def test_fields_are_normalised_places_are_concrete() -> None:
    a = {"items": [{"p": 1}, {"p": 2}], "users": {"123": {"n": "a"}}}
    b = {"items": [{"p": 1}, {"p": 3}], "users": {"123": {"n": "b"}}}
    found = {(d.field, d.where) for d in Differ().compare(json_side(a), json_side(b)).differences}
    assert found == {("$.items[*].p", "$.items[1].p"), ("$.users.*.n", "$.users['123'].n")}


def test_values_of_one_class_are_noise_class() -> None:
    a = {"id": "3f1c2a7e-1b2c-4d5e-8f90-1234567890ab", "at": "2024-05-01T10:00:00Z", "n": "x"}
    b = {"id": "9a1c2a7e-1b2c-4d5e-8f90-1234567890ff", "at": "2024-05-01T10:00:07Z", "n": "y"}
    assert _kinds(a, b) == {"$.id": "value/uuid", "$.at": "value/timestamp", "$.n": "value"}


def test_a_status_difference_is_the_only_one() -> None:
    found = Differ().compare(json_side({"a": 1}, 200), json_side({"error": "x"}, 500)).differences
    assert [(d.field, d.kind, d.a, d.b) for d in found] == [("status", Kind.STATUS, 200, 500)]


def test_default_ignored_headers_and_configured_ones() -> None:
    a = json_side(
        {}, headers=(("Date", "x"), ("Server", "a"), ("Connection", "close"), ("ETag", "1"))
    )
    b = json_side({}, headers=(("date", "y"), ("server", "b"), ("ETag", "2"), ("X-New", "1")))
    assert {d.field: d.kind.value for d in Differ().compare(a, b).differences} == {
        "header:etag": "value",
        "header:x-new": "added",
    }
    only = Differ(rules(headers={"only": ["x-new"]}))
    assert [d.field for d in only.compare(a, b).differences] == ["header:x-new"]
    everything = Differ(rules(headers={"compare_defaults": True, "ignore": ["etag", "x-new"]}))
    assert {d.field for d in everything.compare(a, b).differences} == {
        "header:date",
        "header:server",
        "header:connection",
    }


def test_header_values_with_ids_are_noise_class() -> None:
    a = json_side({}, headers=(("Location", "/orders/3f1c2a7e-1b2c-4d5e-8f90-1234567890ab"),))
    b = json_side({}, headers=(("Location", "/orders/9a1c2a7e-1b2c-4d5e-8f90-1234567890ff"),))
    (d,) = Differ().compare(a, b).differences
    assert (d.field, d.noise) == ("header:location", "uuid")


def test_text_line_by_line() -> None:
    a = Side(
        200,
        [("content-type", "text/html")],
        b"<p>a</p>\n<p>id 3f1c2a7e-1b2c-4d5e-8f90-1234567890ab</p>\n<p>c</p>\n",
    )
    b = Side(
        200,
        [("content-type", "text/html")],
        b"<p>a</p>\n<p>id 9a1c2a7e-1b2c-4d5e-8f90-1234567890ff</p>\n<p>C</p>\n<p>d</p>\n",
    )
    found = [(d.where, d.kind.value, d.noise) for d in Differ().compare(a, b).differences]
    assert found == [
        ("body:line 2", "value", "uuid"),
        ("body:line 3", "value", ""),
        ("body:line 4", "added", ""),
    ]


def test_binary_by_hash_and_kind_changes() -> None:
    png = Side(200, [("content-type", "image/png")], b"\x89PNG\x00\x01")
    other = Side(200, [("content-type", "image/png")], b"\x89PNG\x00\x02")
    (d,) = Differ().compare(png, other).differences
    assert (d.field, d.kind) == ("body:sha256", Kind.HASH)
    assert len(str(d.a)) == 64
    html = Side(200, [("content-type", "application/json")], b"<html>oops</html>")
    (k,) = Differ().compare(json_side({"a": 1}), html).differences
    assert (k.field, k.a, k.b) == ("body:kind", "json", "text")


def test_a_cut_body_is_compared_up_to_what_both_kept() -> None:
    whole = b'{"a": 1, "b": [' + b"1," * 100 + b"2]}"
    a = Side(
        200,
        [("content-type", "application/json")],
        whole[:50],
        body_size=len(whole),
        truncated=True,
    )
    b = Side(200, [("content-type", "application/json")], whole)
    result = Differ().compare(a, b)
    assert result.partial
    assert result.differences == []
    changed = Side(200, [("content-type", "application/json")], whole[:40] + b"9" + whole[41:])
    result = Differ().compare(a, changed)
    assert result.partial and [d.field for d in result.differences] == ["body:line"]
    shorter = Side(200, [("content-type", "application/json")], whole[:60])
    sizes = Differ().compare(a, shorter).differences
    assert [(d.field, d.a, d.b) for d in sizes] == [("body:size", len(whole), 60)]


def test_differences_per_pair_are_capped() -> None:
    a = {f"k{i}": i for i in range(50)}
    b = {f"k{i}": i + 1 for i in range(50)}
    result = Differ(limit=10).compare(json_side(a), json_side(b))
    assert len(result.differences) == 10 and result.cut == 40


def test_long_values_are_shortened_for_display() -> None:
    (d,) = (
        Differ(chars=8)
        .compare(json_side({"a": "x" * 100}), json_side({"a": "y" * 100}))
        .differences
    )
    assert d.a == "xxxxxxxx…"


def test_json_nested_deeper_than_the_walk_recurses_is_compared_as_text() -> None:
    a = Side(200, [("content-type", "application/json")], b'{"a":' * 900 + b"1" + b"}" * 900)
    b = Side(200, [("content-type", "application/json")], b'{"a":' * 900 + b"2" + b"}" * 900)
    (d,) = Differ().compare(a, b).differences
    assert d.field == "body:line"
    wide = {"l": [[i] for i in range(500)], "s": '\\"x"' + "[[[[" * 100}
    assert [
        x.where for x in Differ().compare(json_side(wide), json_side({**wide, "x": 1})).differences
    ] == ["$.x"]
