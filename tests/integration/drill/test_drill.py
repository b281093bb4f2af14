"""``shadowtap drill`` against a real HTTP server, on records with known capture times."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import TopicPartition
from rich.console import Console

from shadowtap.config import Settings
from shadowtap.drill import history
from shadowtap.drill.goals import parse
from shadowtap.drill.session import DrillOptions, run_drill
from shadowtap.drill.window import Window, iso
from shadowtap.errors import WindowError
from shadowtap.kafka import make_admin
from tests.integration.drill.conftest import traffic, write
from tests.integration.replayers.conftest import TargetServer


def _drill(settings: Settings, target: TargetServer, speed: str, **options: Any) -> int:
    rs = dataclasses.replace(settings.replayer, target=target.url, speed=speed)
    return run_drill(
        dataclasses.replace(settings, replayer=rs),
        DrillOptions(**options),
        Console(file=io.StringIO(), width=200),
    )


def _report(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((directory / "drill.json").read_bytes())
    return data


def test_a_sub_window_at_1x_and_at_max_sends_exactly_its_records(
    dsettings: Settings, target: TargetServer, tmp_path: Path
) -> None:
    t0 = time.time_ns() // 1_000_000 - 600_000
    # 60 records 100 ms apart over three partitions, written up to 0.8 s out of capture order
    # (paced replay reads a partition 1 s ahead: within that, order is the recording's).
    envs = traffic(t0, 60, 100, jitter_ms=800)
    write(dsettings, envs, partitions=3)
    window = Window(t0 + 1000, t0 + 5000, skew_ms=5000)
    inside = sorted((e for e in envs if window.holds(e.ts)), key=lambda e: e.ts)
    assert len(inside) == 40

    code = _drill(
        dsettings,
        target,
        "1x",
        name="paced",
        window=window,
        goals=(parse("success>=99.5%"), parse("coverage>=100%")),
        report_dir=tmp_path / "paced",
    )
    assert code == 0
    seen = [s for s in target.seen if not s.headers.get("X-Shadowtap-Id", "").startswith("doctor")]
    # Exactly the window: none before, none after, none missing, none twice.
    assert [s.headers["X-Shadowtap-Id"] for s in seen] == [e.id for e in inside]  # in order
    for (a, b), (ea, eb) in zip(pairwise(seen), pairwise(inside), strict=True):
        # Never early: each gap is at least the recorded one (less the clock's grain).
        assert b.at - a.at >= (eb.ts - ea.ts) / 1000 - 0.03
    assert seen[-1].at - seen[0].at >= (inside[-1].ts - inside[0].ts) / 1000 - 0.03

    report = _report(tmp_path / "paced")
    f = report["figures"]
    assert f["window_records"] == f["sent"] == f["succeeded"] == len(seen) == 40
    assert f["success_rate"] == 1.0 and f["coverage"] == 1.0
    by_method = Counter(s.method for s in seen)
    mix = {(m["method"], m["family"]): m["count"] for m in report["status_mix"]}
    assert mix == {(m, "2xx"): n for m, n in by_method.items()}
    assert report["plan"]["writes"] == by_method["POST"]
    assert report["state"] == "done" and report["passed"]
    assert 0.5 < f["achieved_speed"] <= 1.1

    # Stragglers written last, captured inside the window (within the skew) and just outside.
    stragglers = traffic(t0 + 1050, 2, 3000) + traffic(t0 + 950, 1, 1) + traffic(t0 + 5000, 1, 1)
    write(dsettings, stragglers, partitions=3)
    inside += stragglers[:2]
    target.seen.clear()
    code = _drill(dsettings, target, "max", name="fast", window=window, report_dir=tmp_path / "max")
    assert code == 0
    seen = [s for s in target.seen if not s.headers.get("X-Shadowtap-Id", "").startswith("doctor")]
    assert sorted(s.headers["X-Shadowtap-Id"] for s in seen) == sorted(e.id for e in inside)
    f = _report(tmp_path / "max")["figures"]
    assert f["sent"] == f["succeeded"] == len(seen)

    runs = history.load(dsettings.kafka, dsettings.topics.drills)
    assert [(r["name"], r["state"]) for r in runs] == [("paced", "done"), ("fast", "done")]


def _cli(
    settings: Settings, target: TargetServer, log: Path, *args: str
) -> subprocess.Popen[bytes]:
    t, r = settings.topics, settings.replayer
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env.update(
        {
            "SHADOWTAP_TOPICS_MIRROR": t.mirror,
            "SHADOWTAP_TOPICS_RESULTS": t.results,
            "SHADOWTAP_TOPICS_DLQ": t.dlq,
            "SHADOWTAP_TOPICS_DRILLS": t.drills,
            "SHADOWTAP_REPLAYER_COMMIT_INTERVAL_S": str(r.commit_interval_s),
            "SHADOWTAP_REPLAYER_SESSION_TIMEOUT_S": str(r.session_timeout_s),
        }
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shadowtap.cli",
                "drill",
                "--bootstrap",
                settings.kafka.bootstrap,
                "--target",
                target.url,
                "--no-probe",
                "--loglevel",
                "info",
                *args,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def test_ctrl_c_pauses_and_sigkill_then_resume_miss_nothing_and_repeat_little(
    dsettings: Settings, target: TargetServer, tmp_path: Path
) -> None:
    t0 = time.time_ns() // 1_000_000 - 600_000
    envs = traffic(t0, 240, 10)
    write(dsettings, envs, partitions=3)
    target.mode = "slow:0.05"
    log = tmp_path / "drill.log"
    report = ["--max-in-flight", "4", "--report", str(tmp_path)]

    def until_seen(proc: subprocess.Popen[bytes], n: int) -> None:
        deadline = time.monotonic() + 60
        while len(target.seen) < n and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, log.read_text()[-2000:]

    window = ["--from", iso(t0), "--to", iso(t0 + 10_000)]
    first = _cli(dsettings, target, log, *window, "--name", "crash", *report)
    until_seen(first, 40)
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C: in-flight requests finish, positions kept
    assert first.wait(30) == 3, log.read_text()[-2000:]
    assert _report(tmp_path)["state"] == "paused"
    paused = Counter(s.headers["X-Shadowtap-Id"] for s in target.seen)
    assert all(n == 1 for n in paused.values())

    second = _cli(dsettings, target, log, "--name", "crash", "--resume", *report)
    until_seen(second, len(paused) + 40)
    os.killpg(second.pid, signal.SIGKILL)
    second.wait(10)
    before = len(target.seen)
    assert before < len(envs)

    target.mode = "ok"
    third = _cli(dsettings, target, log, "--name", "crash", "--resume", *report)
    assert third.wait(60) == 0, log.read_text()[-3000:]
    ids = Counter(s.headers["X-Shadowtap-Id"] for s in target.seen)
    assert set(ids) == {e.id for e in envs}  # nothing missing, nothing else
    repeated = sum(n - 1 for n in ids.values())
    # The pause repeated none. The kill repeats what was in flight (4) and what finished since
    # the last checkpoint (every 20 ms): killed right after a batch of 4 was answered, 8.
    assert repeated <= 2 * 4, (repeated, before)
    final = _report(tmp_path)
    assert final["state"] == "done"
    assert final["figures"]["sent"] == len(envs) - (before - repeated)


def test_a_window_past_retention_fails_before_sending_and_names_the_oldest_time(
    dsettings: Settings, target: TargetServer, tmp_path: Path
) -> None:
    t0 = time.time_ns() // 1_000_000 - 600_000
    envs = traffic(t0, 30, 1000)
    write(dsettings, envs, partitions=1)
    # Retention took the first ten records of partition 0 (what the broker's cleaner does).
    admin = make_admin(dsettings.kafka)
    done = admin.delete_records([TopicPartition(dsettings.topics.mirror, 0, 10)])
    next(iter(done.values())).result(15)
    window = Window(t0, t0 + 30_000, skew_ms=1000)

    with pytest.raises(WindowError, match=re.escape(iso(t0 + 10_000))):
        _drill(dsettings, target, "max", name="old", window=window, probe=False)
    assert target.seen == []

    out = io.StringIO()
    rs = dataclasses.replace(dsettings.replayer, target=target.url)
    code = run_drill(
        dataclasses.replace(dsettings, replayer=rs),
        DrillOptions(name="old", window=window, partial=True, dry_run=True, probe=False),
        Console(file=out, width=200),
    )
    assert code == 0 and target.seen == []
    said = out.getvalue()
    assert "20 (exact" in said and "partial window" in said and "dry run: nothing sent" in said

    code = _drill(
        dsettings,
        target,
        "max",
        name="old",
        window=window,
        partial=True,
        probe=False,
        report_dir=tmp_path,
    )
    assert code == 0
    assert sorted(s.headers["X-Shadowtap-Id"] for s in target.seen) == sorted(
        e.id for e in envs[10:]
    )


def test_two_processes_with_one_name_share_the_window(
    dsettings: Settings, target: TargetServer, tmp_path: Path
) -> None:
    t0 = time.time_ns() // 1_000_000 - 600_000
    envs = traffic(t0, 600, 10)  # 200 a partition: 5 s each at 40/s
    write(dsettings, envs, partitions=3)
    target.mode = "slow:0.05"
    window = ["--from", iso(t0), "--to", iso(t0 + 10_000), "--max-in-flight", "2"]
    first = _cli(
        dsettings,
        target,
        tmp_path / "a.log",
        *window,
        "--name",
        "shared",
        "--report",
        str(tmp_path / "a"),
    )
    deadline = time.monotonic() + 60
    while not target.seen and time.monotonic() < deadline:
        time.sleep(0.02)
    second = _cli(
        dsettings,
        target,
        tmp_path / "b.log",
        "--name",
        "shared",
        "--resume",
        "--report",
        str(tmp_path / "b"),
    )
    assert first.wait(120) == 0 and second.wait(120) == 0, (tmp_path / "b.log").read_text()[-3000:]
    ids = Counter(s.headers["X-Shadowtap-Id"] for s in target.seen)
    assert set(ids) == {e.id for e in envs}
    a, b = _report(tmp_path / "a")["figures"], _report(tmp_path / "b")["figures"]
    assert a["sent"] > 0 and b["sent"] > 0  # both delivered part of it
    assert a["sent"] + b["sent"] == sum(ids.values())
    assert sum(n - 1 for n in ids.values()) <= 4  # what was in flight when partitions moved
