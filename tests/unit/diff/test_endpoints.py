"""Route templates: configured first, learned from id-like segments otherwise."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadowtap.diff.endpoints import Endpoints, compile_template, learn


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/users/42", "/users/{id}"),
        ("/users/me", "/users/me"),
        ("/orders/3f1c2a7e-1b2c-4d5e-8f90-1234567890ab/items/7", "/orders/{uuid}/items/{id}"),
        ("/blobs/5f2b8c1e9a7d", "/blobs/{hex}"),
        ("/files/aB3dE5gH7jK9mN1pQ3sT", "/files/{hash}"),
        ("/v1/health", "/v1/health"),
        ("/", "/"),
        ("", "/"),
    ],
)
def test_learned_templates(path: str, template: str) -> None:
    assert learn(path) == template


def test_configured_templates_win_in_order_and_may_name_a_method() -> None:
    endpoints = Endpoints(["POST /users/{name}", "/users/{name}/files/{file}.json"])
    assert endpoints.key("POST", "/users/alice") == "POST /users/{name}"
    assert endpoints.key("GET", "/users/alice") == "GET /users/alice"
    assert endpoints.key("GET", "/users/7/files/a.json") == "GET /users/{name}/files/{file}.json"
    assert Endpoints(learn_templates=False).key("GET", "/users/7") == "GET /users/7"


@pytest.mark.parametrize("bad", ["users/{id}", "get /x", "/x/{id", "/x/{1a}"])
def test_bad_templates_say_why(bad: str) -> None:
    with pytest.raises(ValueError, match="template"):
        compile_template(bad)


segments = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8),
    st.integers(0, 10**12).map(str),
    st.uuids().map(str),
    st.text("0123456789abcdef", min_size=8, max_size=24),
    st.text("-_.~", min_size=1, max_size=3),
)
paths = st.lists(segments, max_size=6).map(lambda s: "/" + "/".join(s))


@given(paths)
def test_learning_is_idempotent_and_the_template_matches_its_path(path: str) -> None:
    template = learn(path)
    assert learn(template) == template
    assert path.count("/") == template.count("/")
    _, _, regex = compile_template(template)
    assert regex.fullmatch(path)


@given(paths)
def test_numbers_always_and_words_never_become_placeholders(path: str) -> None:
    for segment, learned in zip(path.split("/"), learn(path).split("/"), strict=True):
        if segment.isdigit():
            assert learned == "{id}"
        if re.fullmatch(r"[a-z]+", segment):
            assert learned == segment
