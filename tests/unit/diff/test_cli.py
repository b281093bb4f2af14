"""``shadowtap diff report|noise add|accept``: files written, rules the next run reads, exit
codes that gate a deployment. (``diff run`` and ``serve`` read Kafka: tests/e2e/test_diff.py,
tests/integration/diff.)"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shadowtap.cli import main
from shadowtap.diff.rules import load_rules
from shadowtap.diff.summary import from_json, to_json
from tests.unit.diff.test_report import _summary


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "saved.json"
    path.write_bytes(to_json(_summary()))
    return path


def test_report_writes_html_json_and_junit_and_fails_above_the_limit(
    saved: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    assert main(["diff", "report", str(saved), "--out", str(out), "--fail-above", "0.5%"]) == 1
    summary = from_json((out / "diff-summary.json").read_bytes())
    [goal] = summary.goals
    assert (goal.goal, goal.passed) == ("mismatch<=0.5%", False)
    assert "<html" in (out / "diff-report.html").read_text()
    assert "<testsuites" in (out / "diff-junit.xml").read_text()


def test_a_goal_that_holds_passes(saved: Path, tmp_path: Path) -> None:
    assert (
        main(["diff", "report", str(saved), "--out", str(tmp_path), "--goal", "mismatch<=100%"])
        == 0
    )
    # Without goals given, those the run evaluated decide (the saved summary's: one fails).
    assert main(["diff", "report", str(saved), "--out", str(tmp_path)]) == 1


def test_a_bad_goal_is_a_clear_error(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown metric 'speed'"):
        main(["diff", "report", str(saved), "--out", str(tmp_path), "--goal", "speed<=1%"])


def test_noise_add_and_accept_write_the_rules_file_the_next_run_reads(tmp_path: Path) -> None:
    rules = tmp_path / "diff-rules.toml"
    endpoint = "GET /users/{id}"
    assert (
        main(
            [
                "diff",
                "noise",
                "add",
                endpoint,
                "$..updated_at",
                "--rules",
                str(rules),
                "--comparator",
                "timestamp",
                "--seconds",
                "5",
            ]
        )
        == 0
    )
    assert (
        main(["diff", "noise", "add", "", "x-request-id", "--header", "--rules", str(rules)]) == 0
    )
    assert (
        main(
            [
                "diff",
                "accept",
                endpoint,
                "$.name",
                "--rules",
                str(rules),
                "--note",
                "v2 splits the name",
            ]
        )
        == 0
    )
    text = rules.read_text()
    assert "\nversion = 1\n" in text
    loaded = load_rules(rules)
    assert [(n.path, n.header, n.comparator, n.seconds) for n in loaded.noise] == [
        ("$..updated_at", "", "timestamp", 5.0),
        ("", "x-request-id", "ignore", 0.0),
    ]
    assert [(a.endpoint, a.field, a.note) for a in loaded.accept] == [
        (endpoint, "$.name", "v2 splits the name")
    ]


def test_report_applies_the_rules_files_goals(saved: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('version = 1\ngoals = ["mismatch<=100%"]\n')
    assert main(["diff", "report", str(saved), "--out", str(tmp_path), "--rules", str(rules)]) == 0
    goals = orjson.loads((tmp_path / "diff-summary.json").read_bytes())["goals"]
    assert [g["goal"] for g in goals] == ["mismatch<=100%"]


def test_run_refuses_bad_arguments_before_it_reads_anything(tmp_path: Path) -> None:
    unreachable = ["--bootstrap", "127.0.0.1:1", "--out", str(tmp_path)]
    with pytest.raises(ValueError, match="unknown metric"):
        main(["diff", "run", "--targets", "staging", "--goal", "speed<=1%", *unreachable])
    assert main(["diff", "run", "--secondary", "v1-b", *unreachable]) == 2
    assert main(["diff", "run", "--baseline", "v1-a", *unreachable]) == 2
    assert main(["diff", "run", *unreachable]) == 2  # no target named
    assert not (tmp_path / "diff-summary.json").exists()


def test_serve_and_report_refuse_bad_arguments_before_they_connect(
    saved: Path, tmp_path: Path
) -> None:
    unreachable = ["--bootstrap", "127.0.0.1:1"]
    roles = ["--baseline", "v1-a", "--candidate", "v2"]
    assert main(["diff", "serve", "--run", "v2 rollout", *roles, *unreachable]) == 2
    assert main(["diff", "serve", "--run", "v2", "--secondary", "b", *unreachable]) == 2
    assert main(["diff", "serve", "--run", "v2", "--publish-s", "0", *roles, *unreachable]) == 2
    out = ["--out", str(tmp_path), *unreachable]
    assert main(["diff", "report", *out]) == 2  # neither a summary nor --run
    assert main(["diff", "report", str(saved), "--run", "v2", *out]) == 2  # both
    assert not (tmp_path / "diff-summary.json").exists()
