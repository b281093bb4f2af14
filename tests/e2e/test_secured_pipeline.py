"""Capture → process → replay, every stage through the broker's SASL_SSL listener (SCRAM-SHA-512,
a private CA): a real FastAPI app behind the capture middleware under uvicorn, a real
``shadowtap process`` worker and a real ``shadowtap replay`` worker delivering to a real HTTP
server; then ``shadowtap demo`` on the same listener. Every stage reads its security from
SHADOWTAP_KAFKA_* alone, the password from the variable named by ``sasl_password_env``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from shadowtap.config import KafkaSettings, Settings
from shadowtap.devkafka import free_port
from shadowtap.kafka import create_topics
from tests.conftest import kafka_env
from tests.integration.replayers.conftest import TargetServer

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "jane.doe@example.com"


class Stages:
    """Subprocesses with a log file each; all stopped at teardown (SIGTERM, then SIGKILL)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        with (self.home / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")[-2500:]

    def check(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{self.log(name)}"

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def stages(tmp_path: Path) -> Iterator[Stages]:
    running = Stages(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def target() -> Iterator[TargetServer]:
    server = TargetServer()
    yield server
    server.stop()


@pytest.mark.timeout(240)
def test_capture_process_replay_all_through_sasl_ssl(
    secured_settings: Settings,
    stages: Stages,
    target: TargetServer,
    unique_name: Callable[[str], str],
) -> None:
    settings = secured_settings
    create_topics(settings)  # through SASL_SSL too
    t = settings.topics
    env = kafka_env(settings.kafka, sasl_password="", sasl_password_env="E2E_KAFKA_PASSWORD")
    env.update(
        E2E_KAFKA_PASSWORD=settings.kafka.sasl_password,
        PYTHONPATH=str(ROOT),
        SHADOWTAP_TOPICS_CAPTURED=t.captured,
        SHADOWTAP_TOPICS_MIRROR=t.mirror,
        SHADOWTAP_TOPICS_RESULTS=t.results,
        SHADOWTAP_TOPICS_DLQ=t.dlq,
        SHADOWTAP_TOPICS_PARTITIONS=str(t.partitions),
        SHADOWTAP_CAPTURE_SOURCE="secured-e2e",
        SHADOWTAP_PROCESSOR_GROUP=unique_name("processor"),
        SHADOWTAP_PROCESSOR_SCRUB_KEY="secured-e2e-key",
        SHADOWTAP_PROCESSOR_WEB_PORT="0",
    )
    cli = [sys.executable, "-m", "shadowtap.cli"]
    stages.start("processor", [*cli, "process", "--loglevel", "warning"], env)
    stages.start(
        "replayer", [*cli, "replay", "--target", target.url, "--group", unique_name("g")], env
    )
    port = free_port()
    stages.start(
        "app",
        [sys.executable, "-m", "uvicorn", "tests.e2e.liveapps:fastapi_app",
         "--port", str(port), "--log-level", "warning"],
        {**env, "LIVEAPP": "fastapi"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        stages.check()
        try:
            httpx.get(base + "/ready", timeout=1)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, stages.log("app")
            time.sleep(0.1)

    sent = 20
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(sent):
            body = orjson.dumps({"n": i, "email": EMAIL})
            answer = client.post(
                f"/echo?i={i}", content=body, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == 200

    deadline = time.monotonic() + 150
    while len([s for s in target.seen if s.path == "/echo"]) < sent:
        stages.check()
        assert time.monotonic() < deadline, (
            f"{len(target.seen)} of {sent} replayed\nprocessor:\n{stages.log('processor')}"
            f"\nreplayer:\n{stages.log('replayer')}"
        )
        time.sleep(0.2)
    replayed = [s for s in target.seen if s.path == "/echo"]
    assert sorted(int(s.query.removeprefix("i=")) for s in replayed) == list(range(sent))
    for seen in replayed:
        assert seen.headers["X-Shadowtap-Id"]
        assert EMAIL.encode() not in seen.body  # the processor scrubbed it on the way
        assert orjson.loads(seen.body)["email"] != EMAIL


def test_demo_runs_every_stage_on_a_secured_cluster(
    secured_kafka: KafkaSettings, tmp_path: Path
) -> None:
    # The demo takes an existing cluster from SHADOWTAP_BOOTSTRAP and its security from
    # SHADOWTAP_KAFKA_*, and must hand both to the app, processor and replayer it starts.
    env = kafka_env(secured_kafka, sasl_password="", sasl_password_env="E2E_KAFKA_PASSWORD")
    env.update(
        E2E_KAFKA_PASSWORD=secured_kafka.sasl_password,
        SHADOWTAP_BOOTSTRAP=secured_kafka.bootstrap,
        SHADOWTAP_CACHE_DIR=str(tmp_path / "cache"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "shadowtap.cli", "demo",
         "--requests", "30", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=280, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = orjson.loads((tmp_path / "shadowtap-demo-report.json").read_bytes())
    assert report["passed"] is True and all(report["checks"].values())
    assert 0 < report["mirrored"] == report["replayed"]
    assert report["leaked_pii_values"] == []
