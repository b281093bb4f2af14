"""The rules file: every mistake fails at start-up, naming the key and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shadowtap.diff.rules import Rules, load_rules, parse_rules
from shadowtap.errors import ConfigError


def test_a_full_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
        version = 1
        allow_new_fields = true
        templates = ["/users/{id}"]
        goals = ["mismatch<=0.5%"]
        [headers]
        ignore = ["x-request-id"]
        [thresholds]
        relative = 10
        [[noise]]
        path = "$..updated_at"
        comparator = "timestamp"
        seconds = 5
        [[accept]]
        endpoint = "GET /users/{id}"
        field = "$.name"
        kind = "type"
        """
    )
    rules = load_rules(path)
    assert rules.allow_new_fields and rules.thresholds.relative == 10.0
    assert rules.noise[0].seconds == 5.0 and rules.accept[0].kind == "type"
    assert parse_rules({"version": 1}) == Rules()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "no 'version'"),
        ({"version": 2}, "version 2 is not supported"),
        ({"version": 1, "nosie": []}, "unknown setting 'nosie'"),
        ({"version": 1, "noise": [{"path": "$.a", "comparater": "x"}]}, "comparater"),
        ({"version": 1, "noise": [{}]}, r"noise\[0\]: give either 'path'"),
        ({"version": 1, "noise": [{"path": "items"}]}, r"noise\[0\]: path: JSONPath"),
        ({"version": 1, "noise": [{"path": "$.a", "comparator": "fuzzy"}]}, "one of"),
        ({"version": 1, "noise": [{"path": "$.a", "comparator": "numeric"}]}, "tolerance"),
        ({"version": 1, "noise": [{"path": "$.a", "comparator": "timestamp"}]}, "seconds"),
        (
            {"version": 1, "noise": [{"path": "$.a", "comparator": "regex", "pattern": "("}]},
            "regular",
        ),
        ({"version": 1, "noise": [{"path": "$.a", "key": "id"}]}, "unordered"),
        ({"version": 1, "noise": [{"header": "x", "comparator": "unordered"}]}, "headers"),
        ({"version": 1, "noise": [{"path": "$.a", "endpoint": "users"}]}, "endpoint"),
        ({"version": 1, "accept": [{"field": "$.a"}]}, "endpoint"),
        ({"version": 1, "accept": [{"endpoint": "*", "field": "$.a", "kind": "x"}]}, "kind"),
        ({"version": 1, "templates": ["users/{id}"]}, "templates"),
        ({"version": 1, "goals": ["mismatch<=0.5"]}, r"goals\[0\]"),
        ({"version": 1, "thresholds": {"relative": -1}}, "negative"),
    ],
)
def test_mistakes_name_the_key_and_the_fix(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_rules(data)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_rules(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("version = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_rules(bad)
