"""Reports: JSON round trip, JUnit, and HTML that renders in headless Chromium without errors."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from shadowtap.diff.goals import fail_above
from shadowtap.diff.html import Markup, esc, render, write_html
from shadowtap.diff.junit import render as junit
from shadowtap.diff.model import Record, Request
from shadowtap.diff.run import DiffRun, Roles
from shadowtap.diff.summary import Summary, from_json, to_json
from tests.unit.diff.sides import json_side, rules

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = "</script><img src=x onerror=alert(1)>"


def _summary() -> Summary:
    run = DiffRun(rules(), Roles("v1-a", "v2", secondary="v1-b"))
    for i in range(40):
        a = json_side({"name": "Ann", "q": 1, "note": HOSTILE}, duration_ms=5)
        c = json_side(
            {"name": "Ann", "q": "1", "note": HOSTILE + "!"},
            500 if i % 10 == 1 else 200,
            duration_ms=9,
        )
        production = json_side({"name": "Ann", "q": 1, "note": HOSTILE}, duration_ms=1)
        path = f"/users/{i}" if i % 2 else f"/{HOSTILE}/{i}"
        run.add(Record(Request(str(i), "GET", path), {"v1-a": a, "v1-b": a, "v2": c}, production))
    return run.summary(goals=[fail_above("0.5%"), "p99<=1.5x"], redeliveries={"v2": 1})


def test_json_round_trip() -> None:
    summary = _summary()
    assert from_json(to_json(summary)) == summary


def test_junit_one_case_per_endpoint_field_and_goal() -> None:
    root = ET.fromstring(junit(_summary()))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    regression = suites["v2 vs v1-a (noise learned from v1-b vs v1-a)"]
    failed = {
        (c.get("classname"), c.get("name"))
        for c in regression.iter("testcase")
        if c.find("failure") is not None
    }
    assert ("GET /users/{id}", "$.q") in failed and ("GET /users/{id}", "status") in failed
    assert suites["goals"].get("failures") == suites["goals"].get("tests")


def test_one_escaping_function() -> None:
    assert esc(HOSTILE) == "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert esc(Markup("<b>")) == "<b>"
    assert esc(1.5) == "1.5" and esc(None) == ""
    page = render(_summary())
    assert HOSTILE not in page and "onerror=alert(1)&gt;" in page


def _chromium(page: Path, tmp_path: Path) -> tuple[str, str]:
    """The rendered DOM and Chromium's log of the page's console."""
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = "\n".join(line for line in done.stderr.splitlines() if ":CONSOLE" in line)
    return done.stdout, console


needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="headless Chromium not installed (Debian: apt-get install chromium)",
)


@needs_chromium
def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><body><script>undefinedFunction()</script></body>")
    _, console = _chromium(page, tmp_path)
    assert "undefinedFunction is not defined" in console


@needs_chromium
def test_the_report_renders_without_console_errors(tmp_path: Path) -> None:
    page = write_html(_summary(), tmp_path / "report.html")
    dom, console = _chromium(page, tmp_path)
    assert console == ""
    assert 'data-ready="1"' in dom  # the inline script ran to its end
    for content in (
        "Goals FAILED",
        "GET /users/{id}",
        "$.q",
        "regression",
        "data drift: production vs v2",
        "<svg",
        "server-side",
    ):
        assert content in dom, content
    assert "<img" not in dom


def test_an_empty_run_renders_and_says_so() -> None:
    empty = DiffRun(rules()).summary()
    page = render(empty)
    assert "No goals were set" in page and "No responses recorded." in page
    assert "No latencies recorded." in page and "Mode drift (production only)" in page
    assert ET.fromstring(junit(empty)).tag == "testsuites"
