"""The README's first command: `shadowtap demo` runs the whole pipeline and its checks pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from shadowtap.devkafka import Broker


def test_demo_runs_the_whole_pipeline_and_reports(kafka_broker: Broker, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env["SHADOWTAP_BOOTSTRAP"] = kafka_broker.bootstrap
    proc = subprocess.run(
        [sys.executable, "-m", "shadowtap.cli", "demo",
         "--requests", "60", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=280, check=False,
    )  # fmt: skip
    report = orjson.loads((tmp_path / "shadowtap-demo-report.json").read_bytes())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["passed"] is True
    assert all(report["checks"].values())
    assert report["sent"] >= 60
    assert report["captured"] >= report["sent"]  # plus the readiness probe of the demo
    assert 0 < report["mirrored"] < report["captured"]  # health checks and retries dropped
    assert report["replayed"] == report["mirrored"]
    assert report["leaked_pii_values"] == []
    assert report["planted_pii_values"] > 0
    # v2 renames a field and changes no status, so statuses agree; the HTML report exists.
    assert "all checks passed" in (tmp_path / "shadowtap-demo-report.html").read_text()
    # The diff of production against staging: v2's renamed field, found on every order.
    diff = orjson.loads((tmp_path / "shadowtap-demo-diff.json").read_bytes())
    assert diff["mode"] == "drift" and diff["totals"]["compared"] > 0
    [drift] = diff["views"]
    assert drift["label"].startswith("data drift: production vs")
    assert any(f["verdict"] == "difference" for e in drift["endpoints"] for f in e["fields"])
    assert "data drift" in proc.stderr and (tmp_path / "shadowtap-demo-diff.html").exists()
    # Last, a short DR drill of the run's window to staging: every mirrored record, once.
    drill = orjson.loads((tmp_path / "drill" / "drill.json").read_bytes())
    assert drill["state"] == "done" and drill["figures"]["sent"] == report["mirrored"]
    assert "DR drill: goal met" in proc.stderr
