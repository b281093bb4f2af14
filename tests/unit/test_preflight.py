"""The two critical checks replay and drill run at start-up, on records given to them."""

from __future__ import annotations

from typing import Any

import pytest

from shadowtap.config import Settings
from shadowtap.envelope import Envelope
from shadowtap.preflight import (
    Finding,
    Status,
    as_json,
    critical_findings,
    failures,
    show,
    start_allowed,
)

PRODUCTION = [Envelope("POST", "/checkout", host="127.0.0.1:8001")]


def _settings(**marking: Any) -> Settings:
    return Settings.load(env={}, overrides={"marking": marking})


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def test_the_production_address_is_refused_and_another_port_passes() -> None:
    refused = _by_check(
        critical_findings(_settings(key="k"), "http://127.0.0.1:8001/", records=PRODUCTION)
    )
    assert refused["production-target"].status is Status.FAIL
    assert "127.0.0.1:8001 is where the recorded production requests were sent" in (
        refused["production-target"].found
    )
    assert "--allow-production-target" in refused["production-target"].fix
    passed = _by_check(
        critical_findings(_settings(key="k"), "http://127.0.0.1:8002", records=PRODUCTION)
    )
    assert passed["production-target"].status is Status.PASS
    assert passed["marking-key"].status is Status.PASS


def test_the_override_turns_the_refusal_into_a_warning_that_names_the_risk() -> None:
    findings = critical_findings(
        _settings(key="k"), "http://127.0.0.1:8001", records=PRODUCTION, allow_production=True
    )
    production = _by_check(findings)["production-target"]
    assert production.status is Status.WARN
    assert "reaches production a second time" in production.found
    assert failures(findings) == []


def test_a_production_name_resolving_like_the_target_is_refused() -> None:
    records = [Envelope("GET", "/", host="shop.example:443", scheme="https")]
    addresses = {"shop.example": {"203.0.113.7"}, "shop-lb.example": {"203.0.113.7"}}
    findings = critical_findings(
        _settings(key="k"),
        "https://shop-lb.example",
        records=records,
        resolve=lambda host: addresses.get(host, set()),
    )
    assert _by_check(findings)["production-target"].status is Status.FAIL


def test_no_records_yet_is_a_warning_not_a_pass() -> None:
    production = _by_check(critical_findings(_settings(key="k"), "http://stg", records=[]))
    assert production["production-target"].status is Status.WARN


@pytest.mark.parametrize(
    ("marking", "target", "status"),
    [
        ({}, "http://127.0.0.1:8002", Status.WARN),  # the demo, the tests: one machine
        ({}, "http://localhost:8002", Status.WARN),
        ({}, "https://staging.internal", Status.FAIL),
        ({"key": "a secret"}, "https://staging.internal", Status.PASS),
        ({"key_env": "NOT_SET_ANYWHERE_4711"}, "https://staging.internal", Status.FAIL),
    ],
)
def test_the_development_key_is_refused_off_this_machine(
    marking: dict[str, str], target: str, status: Status
) -> None:
    finding = _by_check(critical_findings(_settings(**marking), target, records=[]))["marking-key"]
    assert finding.status is status
    if status is not Status.PASS:
        assert "marking.key_env" in finding.fix


class Console:
    def __init__(self) -> None:
        self.printed: list[Any] = []

    def print(self, *objects: Any, **_: Any) -> None:
        self.printed.extend(objects)


def test_findings_render_as_a_table_and_as_json() -> None:
    from rich.console import Console as RichConsole

    findings = critical_findings(_settings(), "https://shop.internal:8001", records=PRODUCTION)
    rich = RichConsole(record=True, width=200, force_terminal=True)
    show(findings, rich)
    text = rich.export_text()
    assert "marking-key" in text and "fail" in text.lower()
    assert as_json(findings) == {
        "passed": False,
        "findings": [f.as_dict() for f in findings],
    }
    assert as_json(findings)["findings"][1]["status"] == "fail"
    log = RichConsole(record=True, width=60, force_terminal=False)
    show(findings, log)
    lines = log.export_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("FAIL  marking-key: ")  # one line each
    assert lines[1].endswith("the target share")


def test_start_allowed_shows_what_is_not_a_pass() -> None:
    console = Console()
    settings = _settings(key="k")
    assert not start_allowed(settings, "http://127.0.0.1:8001", console, records=PRODUCTION)
    assert "refused to replay to http://127.0.0.1:8001" in console.printed[-1]
    console = Console()
    assert start_allowed(settings, "http://127.0.0.1:8002", console, records=PRODUCTION)
    assert console.printed == []
