"""The diff end to end: does v2 behave like v1? Every planted regression named, no noise.

All real and started here: production (v1, tests/e2e/apps/versions.py) behind the capture
middleware; ``shadowtap process``; three ``shadowtap replay`` groups, to two v1 baselines
(``v1-a``, ``v1-b``) and the v2 candidate; then ``shadowtap diff run`` in three-way mode
over their results, and the Faust agent (``diff serve``, reported by ``diff report --run``)
over the same results. Both versions make noise (random ids, timestamps, shuffled unordered
arrays, floats within tolerance, ``Date``/``Server``/``X-Request-Id`` headers); v2 plants a
type change, a dropped key, a reordered array whose order matters, a float beyond tolerance,
a wrong status and a three times slower endpoint. The HTML report opens in headless Chromium
without console errors.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from shadowtap.cli import main
from shadowtap.config import KafkaSettings, Settings
from shadowtap.devkafka import free_port
from shadowtap.diff import states
from shadowtap.diff.rules import Rules
from shadowtap.diff.summary import Summary, from_json
from shadowtap.kafka import create_topics
from shadowtap.results import decode as decode_result
from tests.conftest import settings_for
from tests.e2e.apps.servers import capture_env, start_server, stop_server
from tests.e2e.test_safe_mirroring import _config as _safe_config
from tests.e2e.test_safe_mirroring import _Processes, _read
from tests.unit.diff.test_report import _chromium, needs_chromium

TARGETS = ("v1-a", "v1-b", "v2")
CLI = [sys.executable, "-m", "shadowtap.cli"]
UVICORN = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
PER_ROUTE = 12
RULES = """version = 1
[[noise]]
path = "$..tags"
comparator = "unordered"
[[noise]]
path = "$..tax"
comparator = "numeric"
tolerance = 0.01
[[noise]]
path = "$..total"
comparator = "numeric"
tolerance = 0.01
"""
PLANTED = {
    ("GET /api/users/{id}", "$.count"),  # type changed
    ("GET /api/users/{id}", "$.nickname"),  # key dropped
    ("GET /api/orders/{id}", "$.steps"),  # an array whose order matters, reordered
    ("GET /api/orders/{id}", "$.total"),  # a float beyond tolerance
    ("GET /api/stock/{id}", "status"),  # a wrong status
}
NOISE = {"$.request_id", "$.generated_at", "$.tags", "$.tax", "header:date", "header:server",
         "header:x-request-id"}  # fmt: skip


@dataclass
class Run:
    summary: Summary
    code: int
    out: Path
    diffs: list[dict[str, object]]
    served: Summary  # the same results through the Faust agent, diff serve + report --run
    served_code: int


def _config(settings: Settings, path: Path) -> Path:
    """The safe-mirroring test's settings file, with this run's diffs topic and a replayer
    window small enough that the targets' latencies are their own, not a queue's."""
    _safe_config(settings, path)
    t = settings.topics
    topics = f'[topics]\ndiffs = "{t.diffs}"\ndiff_states = "{t.diff_states}"\n'
    text = path.read_text().replace("[topics]\n", topics)
    path.write_text(text + "[replayer]\nmax_in_flight = 8\n")
    return path


def _traffic(base: str) -> int:
    sent = 0
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(PER_ROUTE):
            for path in (f"/api/users/{i + 1}", f"/api/orders/{i + 1}", f"/api/stock/{i + 1}",
                         f"/api/search?q=lamp{i}"):  # fmt: skip
                assert client.get(path).status_code == 200
                sent += 1
    return sent


@pytest.fixture(scope="module")
def diff_run(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Run]:
    home = tmp_path_factory.mktemp("diff-e2e")
    run = uuid.uuid4().hex[:8]
    settings = settings_for(kafka_settings.bootstrap, lambda name: f"diff-{run}.{name}")
    create_topics(settings)
    env = capture_env(settings.kafka.bootstrap, settings.topics.captured)
    config = env["SHADOWTAP_CONFIG"] = str(_config(settings, home / "shadowtap.toml"))
    processes, servers = _Processes(home), list[subprocess.Popen[bytes]]()
    try:
        ports = {name: free_port() for name in ("production", *TARGETS)}
        app = "tests.e2e.apps.versions:app"
        for name in TARGETS:
            version = {"APP_VERSION": name[:2]}
            servers.append(
                start_server(
                    [*UVICORN, "--port", str(ports[name]), app],
                    ports[name],
                    {**env, **version},
                    home / f"{name}.log",
                )
            )
        processes.start("processor", [*CLI, "process", "--loglevel", "warning"], env)
        for name in TARGETS:
            target = f"http://127.0.0.1:{ports[name]}"
            replay_env = {**env, "SHADOWTAP_REPLAYER_TARGET_NAME": name}
            replay = [*CLI, "replay", "--target", target, "--group", f"g-{name}-{run}"]
            processes.start(f"replay-{name}", replay, replay_env)
        production_env = {**env, "APP_VERSION": "v1", "APP_CAPTURE": "1"}
        servers.append(
            start_server(
                [*UVICORN, "--port", str(ports["production"]), app],
                ports["production"],
                production_env,
                home / "production.log",
            )
        )
        sent = _traffic(f"http://127.0.0.1:{ports['production']}")

        def every_result(values: list[bytes]) -> bool:
            counts = dict.fromkeys(TARGETS, 0)
            for value in values:
                result = decode_result(value)
                if result.path.startswith("/api/") and result.target in counts:
                    counts[result.target] += 1
            return all(n >= sent for n in counts.values())

        values = _read(settings.kafka, settings.topics.results, every_result, 150)
        assert every_result(values), f"not every request was replayed\n{processes.logs()}"

        rules = home / "diff-rules.toml"
        rules.write_text(RULES)
        out = home / "report"
        code = main(
            [
                "diff", "run", "--config", config, "--rules", str(rules),
                "--baseline", "v1-a", "--secondary", "v1-b", "--candidate", "v2",
                "--idle-s", "2", "--out", str(out),
                "--fail-above", "0.5%", "--goal", "*: p50<=2x",
            ]
        )  # fmt: skip
        summary = from_json((out / "diff-summary.json").read_bytes())

        def all_samples(found: list[bytes]) -> bool:
            return len(found) >= sum(
                len(f.samples) for v in summary.views for e in v.endpoints for f in e.fields
            )

        diffs = _read(settings.kafka, settings.topics.diffs, all_samples, 30)
        roles = ["--baseline", "v1-a", "--secondary", "v1-b", "--candidate", "v2"]
        serve = [*CLI, "diff", "serve", "--run", run, "--rules", str(rules), "--publish-s", "1"]
        processes.start("diff-serve", [*serve, *roles], env)
        _served(settings, run, summary.totals.records, processes)
        served_code = main(
            ["diff", "report", "--run", run, "--config", config, "--rules", str(rules),
             "--out", str(home / "served"), "--fail-above", "0.5%", "--goal", "*: p50<=2x"]
        )  # fmt: skip
        served = from_json((home / "served" / "diff-summary.json").read_bytes())
        yield Run(summary, code, out, [orjson.loads(d) for d in diffs], served, served_code)
    finally:
        for server in servers:
            stop_server(server)
        processes.stop()


def _served(settings: Settings, run: str, records: int, processes: _Processes) -> Summary:
    """The diff serve worker's published summary once it compared ``records`` records."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = states.load(settings.kafka, settings.topics.diff_states, run)
        if found:
            summary = states.merged_summary(found, Rules())
            if summary.totals.records >= records:
                return summary
        time.sleep(0.5)
    pytest.fail(f"diff serve did not compare {records} records\n{processes.logs()}")


def _flagged(summary: Summary, view: str) -> set[tuple[str, str]]:
    found = summary.view(view)
    assert found is not None
    return {
        (e.endpoint, f.field)
        for e in found.endpoints
        for f in e.fields
        if f.verdict in ("regression", "difference")
    }


def test_the_report_names_every_planted_regression_and_no_noise(diff_run: Run) -> None:
    summary = diff_run.summary
    assert summary.mode == "three-way"
    flagged = _flagged(summary, "regression")
    assert flagged == PLANTED
    assert not {field for _, field in flagged} & NOISE
    regression = summary.view("regression")
    assert regression is not None
    kinds = {(e.endpoint, f.field): set(f.kinds) for e in regression.endpoints for f in e.fields}
    assert kinds[("GET /api/users/{id}", "$.count")] == {"type"}
    assert kinds[("GET /api/users/{id}", "$.nickname")] == {"removed"}
    assert kinds[("GET /api/orders/{id}", "$.steps")] == {"order"}


def test_the_slow_endpoint_and_only_it_fails_its_latency_goal(diff_run: Run) -> None:
    latency = [g for g in diff_run.summary.goals if g.goal == "*: p50<=2x"]
    failed = {g.endpoint for g in latency if not g.passed}
    assert failed == {"GET /api/search"}, latency
    ratios = {row.endpoint: row.ratios.get("p50", 0.0) for row in diff_run.summary.latency}
    assert ratios["GET /api/search"] >= 2.0


def test_every_record_was_paired_and_the_gate_is_closed(diff_run: Run) -> None:
    totals = diff_run.summary.totals
    assert totals.unpaired == 0 and totals.compared == totals.records >= 4 * PER_ROUTE
    assert not totals.incomplete
    assert diff_run.code == 1  # more than 0.5 % of records mismatch: CI stops the deploy


def test_production_vs_targets_is_reported_apart_as_data_drift(diff_run: Run) -> None:
    summary = diff_run.summary
    for target in TARGETS:
        drift = summary.view(f"drift:{target}")
        assert drift is not None and drift.label == f"data drift: production vs {target}"
        assert sum(e.compared for e in drift.endpoints) == summary.totals.compared
    # Production and the v1 baselines run the same version: only v2 drifts, as planted.
    assert _flagged(summary, "drift:v1-a") == _flagged(summary, "drift:v1-b") == set()
    assert _flagged(summary, "drift:v2") == PLANTED


def test_sampled_mismatches_are_on_the_diffs_topic(diff_run: Run) -> None:
    fields = {(d["view"], d["endpoint"], d["field"]) for d in diff_run.diffs}
    for endpoint, field in PLANTED:
        assert ("regression", endpoint, field) in fields


def test_the_faust_agent_finds_the_same_as_the_batch_run(diff_run: Run) -> None:
    served, batch = diff_run.served, diff_run.summary
    assert _flagged(served, "regression") == PLANTED
    assert _flagged(served, "drift:v2") == PLANTED
    assert served.totals.records == batch.totals.records
    assert served.totals.compared == batch.totals.compared and served.totals.waiting == 0
    assert diff_run.served_code == 1  # the same gate, from every worker's merged state


@needs_chromium
def test_the_html_report_opens_without_console_errors(diff_run: Run, tmp_path: Path) -> None:
    dom, console = _chromium(diff_run.out / "diff-report.html", tmp_path)
    assert console == ""
    for endpoint, field in PLANTED:
        assert field in dom and endpoint in dom
    assert "GET /api/search" in dom and "data drift" in dom
