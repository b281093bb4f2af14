"""``shadowtap drill`` against a real HTTP server, on records with known capture times."""

from __future__ import annotations

import dataclasses
import io
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from shadowtap.config import Settings
from shadowtap.drill import history
from shadowtap.drill.goals import parse
from shadowtap.drill.session import DrillOptions, run_drill
from shadowtap.drill.window import Window
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
