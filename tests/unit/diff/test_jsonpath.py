"""JSONPath rules: the supported subset, checked against a reference implementation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonpath import JSONPathEnvironment

from shadowtap.diff.compare import Differ
from shadowtap.diff.jsonpath import JsonPath, member, normal_member, render
from shadowtap.diff.model import Side

KEYS = ["a", "b", "price", "items", "x y", "it's", "back\\slash", "0", "é", "_k", "a.b", "[*]"]
IDENTS = ["a", "b", "price", "items", "_k"]
# python-jsonpath in its RFC 9535 mode: the reference our rule paths must agree with.
reference = JSONPathEnvironment(strict=True)


def _quoted(key: str) -> str:
    return "'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'"


json_docs = st.recursive(
    st.integers(0, 9),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=20,
)
selectors = st.one_of(
    st.sampled_from(KEYS).map(_quoted),
    st.integers(0, 3).map(str),
    st.just("*"),
)
segments = st.one_of(
    st.sampled_from(IDENTS).map(lambda k: "." + k),
    st.just(".*"),
    st.lists(selectors, min_size=1, max_size=2).map(lambda s: "[" + ",".join(s) + "]"),
    st.sampled_from(IDENTS).map(lambda k: ".." + k),
    st.just("..*"),
    st.lists(selectors, min_size=1, max_size=2).map(lambda s: "..[" + ",".join(s) + "]"),
)
rule_paths = st.lists(segments, min_size=1, max_size=4).map(lambda s: "$" + "".join(s))


def _nodes(doc: Any, parts: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [parts] if parts else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _nodes(v, (*parts, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _nodes(v, (*parts, i))
    return out


@settings(max_examples=300, deadline=None)
@given(doc=json_docs, text=rule_paths)
def test_selects_exactly_what_the_reference_selects(doc: Any, text: str) -> None:
    rule = JsonPath(text)
    ours = {render(p) for p in _nodes(doc) if rule.matches(render(p))}
    theirs = {render(m.parts) for m in reference.finditer(text, doc)}
    assert ours == theirs


@given(st.text(max_size=30))
def test_any_text_parses_or_says_why(text: str) -> None:
    try:
        JsonPath(text)
    except ValueError as exc:
        assert "JSONPath" in str(exc)


@settings(max_examples=150, deadline=None)
@given(a=json_docs, b=json_docs)
def test_a_normalised_field_is_a_rule_selecting_its_places(a: Any, b: Any) -> None:
    comparison = Differ(limit=10_000).compare(_json(a), _json(b))
    for d in comparison.differences:
        if d.field.startswith("$"):
            assert JsonPath(d.field).matches(d.where), d


def _json(doc: Any) -> Side:
    import orjson

    return Side(200, [("content-type", "application/json")], orjson.dumps(doc))


def test_recursive_descent_goes_through_arrays_of_objects() -> None:
    # keploy#2816/#3311: $..price must reach prices inside arrays of objects.
    rule = JsonPath("$..price")
    assert rule.matches("$.items[3].price")
    assert rule.matches("$.orders[0].lines[2].price")
    assert rule.matches("$.price")
    assert not rule.matches("$.items[3].price_eur")
    assert not rule.matches("$.items[3].price.amount")


def test_wildcards_unions_and_indices() -> None:
    assert JsonPath("$.items[*].price").matches("$.items[0].price")
    assert not JsonPath("$.items[*].price").matches("$.items.price")
    assert JsonPath("$.a[0,2]").matches("$.a[2]")
    assert not JsonPath("$.a[0,2]").matches("$.a[1]")
    assert JsonPath("$['x y'].*").matches("$['x y'].z")
    assert JsonPath("$.users.*.name").matches("$.users['42'].name")


def test_paths_render_odd_keys_in_brackets() -> None:
    assert member("price") == ".price"
    assert member("it's") == "['it\\'s']"
    assert render(["a b", 1, "c"]) == "$['a b'][1].c"
    assert normal_member("1234") == ".*"
    assert normal_member("3f1c2a7e-1b2c-4d5e-8f90-1234567890ab") == ".*"
    assert normal_member("name") == ".name"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("items", "starts with"),
        ("$.a[?(@.b)]", "filters"),
        ("$.a[1:3]", "slices"),
        ("$.a[-1]", "negative"),
        ("$.a[", "unclosed"),
        ("$.", "must follow"),
        ("$.a['b]", "unclosed"),
    ],
)
def test_unsupported_paths_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        JsonPath(text)
