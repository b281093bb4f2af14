"""Triage edits the rules file and keeps everything else in it as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowtap.diff.rules import load_rules
from shadowtap.diff.triage import accept, add_header_noise, add_noise
from shadowtap.errors import ConfigError

WRITTEN = """\
# Rules for the checkout service: owned by the payments team.
version = 1
templates = ["/users/{id}"]  # keep in sync with the router

[[noise]]
path = "$..updated_at"   # set by the database
comparator = "timestamp"
seconds = 5
"""


def test_add_noise_keeps_comments_and_order(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(WRITTEN)
    rule = add_noise(path, "GET /users/{id}", "$.items[*].price", "numeric", tolerance=0.01)
    assert (rule.path, rule.tolerance) == ("$.items[*].price", 0.01)
    text = path.read_text()
    assert text.startswith(WRITTEN)
    assert 'path = "$.items[*].price"' in text and 'endpoint = "GET /users/{id}"' in text
    rules = load_rules(path)
    assert [r.path for r in rules.noise] == ["$..updated_at", "$.items[*].price"]


def test_accept_and_header_noise(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(WRITTEN)
    accept(path, "GET /users/{id}", "$.name", "removed", note="v2 drops it on purpose")
    add_header_noise(path, "", "x-trace-*")
    rules = load_rules(path)
    assert rules.accept[0].note == "v2 drops it on purpose"
    assert rules.noise[1].header == "x-trace-*"


def test_a_missing_file_is_created_versioned(tmp_path: Path) -> None:
    path = tmp_path / "new" / "rules.toml"
    add_noise(path, "", "$.meta")
    assert "version = 1" in path.read_text()
    assert load_rules(path).noise[0].path == "$.meta"


def test_the_same_entry_is_not_added_twice(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    add_noise(path, "*", "$.meta")
    before = path.read_text()
    add_noise(path, "*", "$.meta")
    assert path.read_text() == before


def test_bad_entries_leave_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(WRITTEN)
    with pytest.raises(ConfigError, match="JSONPath"):
        add_noise(path, "", "items[0")
    with pytest.raises(ConfigError, match="no key 'colour'"):
        add_noise(path, "", "$.a", colour="red")
    with pytest.raises(ConfigError, match="kind"):
        accept(path, "GET /a", "$.a", "renamed")
    assert path.read_text() == WRITTEN
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_broken_file_is_reported_not_edited(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("version = 3\n")
    with pytest.raises(ConfigError, match="version 3"):
        add_noise(path, "", "$.a")
    assert path.read_text() == "version = 3\n"
