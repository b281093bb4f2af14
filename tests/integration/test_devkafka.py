"""`shadowtap kafka start|status|stop` and `topics create` against a fresh local broker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from shadowtap.config import TopicSettings
from shadowtap.devkafka import LocalKafka
from shadowtap.devkafka_jars import jars_dir
from shadowtap.kafka import topic_specs


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shadowtap.cli", *args],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )  # fmt: skip


@pytest.mark.skipif(
    os.environ.get("SHADOWTAP_BOOTSTRAP") is not None, reason="uses the local JVM broker"
)
def test_start_reports_the_running_broker_instead_of_starting_another(tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    try:
        first = _cli("kafka", "start", "--name", name, env=env)
        assert first.returncode == 0, first.stderr
        assert "started" in first.stderr
        bootstrap = first.stdout.strip()

        second = _cli("kafka", "start", "--name", name, env=env)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stderr
        assert second.stdout.strip() == bootstrap

        status = _cli("kafka", "status", "--name", name, env=env)
        assert status.returncode == 0 and bootstrap in status.stderr

        created = _cli("topics", "create", "--bootstrap", bootstrap, env=env)
        assert created.returncode == 0, created.stderr
        assert "shadowtap.mirror" in created.stderr
        again = _cli("topics", "create", "--bootstrap", bootstrap, env=env)
        assert again.stderr.count("exists") == len(topic_specs(TopicSettings()))
        described = _cli("topics", "describe", "--bootstrap", bootstrap, env=env)
        assert described.returncode == 0 and "retention=168h" in described.stderr
    finally:
        stop = _cli("kafka", "stop", "--name", name, env=env)
    assert stop.returncode == 0 and "stopped" in stop.stderr
    after = _cli("kafka", "status", "--name", name, env=env)
    assert after.returncode == 1 and "not running" in after.stderr
    assert LocalKafka(name).status() is None
    assert (jars_dir() / f"kafka_2.13-{'3.9.1'}.jar").exists()
