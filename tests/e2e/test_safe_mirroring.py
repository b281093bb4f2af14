"""Safe mirroring end to end: production traffic through the whole pipeline into two guarded
staging apps, whose side effects reach real sinks only for their own ordinary traffic.

Everything is real and started here, once for the module: a production shop (FastAPI behind
capture, tests/e2e/apps/guarded.py), ``shadowtap process``, one ``shadowtap replay`` per
staging app, and two staging apps (FastAPI under uvicorn, Django under gunicorn), each with
the guard and, in front of it, capture of its own. A staging checkout e-mails through
smtplib (an aiosmtpd sink), charges a "payment API" (a local HTTP sink) through httpx and
requests, and posts a webhook through aiohttp (tests/sinks.py). The replayers sign each
attempt with the key the staging apps share (``[marking]``); nothing in the test signs a
mirrored request itself.
"""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import orjson
import pytest

from shadowtap.cli import main
from shadowtap.config import KafkaSettings, Settings
from shadowtap.devkafka import free_port
from shadowtap.envelope import decode
from shadowtap.kafka import create_topics, make_consumer
from shadowtap.marking import Marker
from shadowtap.results import Result
from shadowtap.results import decode as decode_result
from tests.e2e.apps.servers import ROOT, capture_env, start_server, stop_server
from tests.sinks import HTTPSink, SMTPSink, sinks

KEY = "staging-and-replayers-share-this"
CHECKOUTS = 3  # production checkouts mirrored to each staging app
MAIL_EFFECTS = {"smtp", "django-mail"}
STAGING = ("fastapi", "django")


def _case() -> str:
    """A test case id of letters only: nothing the processor's scrubber could take for PII."""
    return "".join(random.choices(string.ascii_lowercase, k=12))


@dataclass
class Staging:
    name: str
    base: str
    group: str
    http: HTTPSink
    smtp: SMTPSink

    def checkout(self, case: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(
            f"{self.base}/checkout?case={case}",
            headers={"X-Test-Case": case, **(headers or {})},
            timeout=30,
        )

    def arrived(self, case: str) -> tuple[int, int]:
        """Calls of one case that reached the payment API and the mail server."""
        return len(self.http.matching(f"/{case}")), len(self.smtp.matching(case))


@dataclass
class Pipeline:
    settings: Settings
    config: Path
    production: str
    staging: dict[str, Staging]
    staging_captured: str
    mirrored_cases: list[str]
    results: dict[str, list[Result]] = field(default_factory=dict)  # by staging app


def _config(settings: Settings, path: Path) -> Path:
    t = settings.topics
    path.write_text(
        f"""
[kafka]
bootstrap = "{settings.kafka.bootstrap}"
client_id = "shadowtap-tests"
[topics]
captured = "{t.captured}"
mirror = "{t.mirror}"
results = "{t.results}"
dlq = "{t.dlq}"
redriven = "{t.redriven}"
retry_prefix = "{t.retry_prefix}"
partitions = {t.partitions}
[capture]
source = "shop"
hash_key = "e2e-capture-hash-key"
flush_timeout_s = 5
[processor]
group = "processor-{uuid.uuid4().hex[:8]}"
scrub_key = "e2e-scrub-key"
web_port = 0
session_timeout_s = 6
[marking]
key = "{KEY}"
"""
    )
    return path


def _read(
    kafka: KafkaSettings, topic: str, done: Callable[[list[bytes]], bool], limit_s: float
) -> list[bytes]:
    """Values of ``topic`` from its start until ``done`` says enough (or time runs out)."""
    consumer = make_consumer(kafka, f"e2e-reader-{uuid.uuid4().hex[:8]}")
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + limit_s
    try:
        while not done(values) and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if msg.error() is None:
                    values.append(msg.value())
    finally:
        consumer.close()
    return values


class _Processes:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        with (self.home / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}:\n" + (self.home / f"{name}.log").read_text(errors="replace")[-2000:]
            for name in self.procs
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            stop_server(proc)


@pytest.fixture(scope="module")
def pipeline(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    home = tmp_path_factory.mktemp("safe-mirroring")
    run = uuid.uuid4().hex[:8]
    settings = Settings.load(
        env={},
        overrides={
            "kafka": {"bootstrap": kafka_settings.bootstrap},
            "topics": {
                "captured": f"safe-{run}.captured",
                "mirror": f"safe-{run}.mirror",
                "results": f"safe-{run}.results",
                "dlq": f"safe-{run}.dlq",
                "redriven": f"safe-{run}.redriven",
                "retry_prefix": f"safe-{run}.retry.",
                "partitions": 3,
            },
        },
    )
    staging_captured = f"safe-{run}.staging-captured"
    create_topics(settings)
    create_topics(replace(settings, topics=replace(settings.topics, captured=staging_captured)))
    config = _config(settings, home / "shadowtap.toml")
    env = capture_env(settings.kafka.bootstrap, settings.topics.captured)
    env["SHADOWTAP_CONFIG"] = str(config)
    cli = [sys.executable, "-m", "shadowtap.cli"]
    uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--log-level", "warning"]
    processes = _Processes(home)
    servers: list[subprocess.Popen[bytes]] = []
    http, smtp = next(sink_pair := sinks())
    try:
        ports = {name: free_port() for name in ("production", *STAGING)}
        staging = {
            name: Staging(name, f"http://127.0.0.1:{ports[name]}", f"g-{name}-{run}", http, smtp)
            for name in STAGING
        }
        processes.start("processor", [*cli, "process", "--loglevel", "warning"], env)
        for s in staging.values():
            replay = [*cli, "replay", "--target", s.base, "--group", s.group]
            processes.start(f"replay-{s.name}", replay, env)
        servers.append(
            start_server(
                [
                    *uvicorn,
                    "--port",
                    str(ports["production"]),
                    "tests.e2e.apps.guarded:production_app",
                ],
                ports["production"],
                {**env, "GUARDED_APP": "production"},
                home / "production.log",
            )
        )
        staging_env = {
            **env,
            "SHADOWTAP_TOPICS_CAPTURED": staging_captured,
            "SHADOWTAP_CAPTURE_SOURCE": "staging",
            "GUARDED_CAPTURE": "1",
            "SINK_HTTP": http.url,
            "SINK_SMTP_PORT": str(smtp.port),
        }
        gunicorn = [sys.executable, "-m", "gunicorn", "-w", "1", "-b"]
        commands = {
            "fastapi": [
                *uvicorn,
                "--port",
                str(ports["fastapi"]),
                "tests.e2e.apps.guarded:fastapi_app",
            ],
            "django": [
                *gunicorn,
                f"127.0.0.1:{ports['django']}",
                "tests.e2e.apps.guarded:django_app",
            ],
        }
        for name, command in commands.items():
            servers.append(
                start_server(
                    command, ports[name], {**staging_env, "GUARDED_APP": name}, home / f"{name}.log"
                )
            )

        cases = [_case() for _ in range(CHECKOUTS)]
        with httpx.Client(base_url=f"http://127.0.0.1:{ports['production']}", timeout=10) as client:
            for case in cases:
                answer = client.post(f"/checkout?case={case}", headers={"X-Test-Case": case})
                assert answer.json() == {"order": "accepted"}

        groups = {s.group: s.name for s in staging.values()}

        def every_result(values: list[bytes]) -> bool:
            counts = dict.fromkeys(STAGING, 0)
            for value in values:
                result = decode_result(value)
                if result.path == "/checkout" and result.group in groups:
                    counts[groups[result.group]] += 1
            return all(n >= CHECKOUTS for n in counts.values())

        values = _read(settings.kafka, settings.topics.results, every_result, 120)
        assert every_result(values), f"not every checkout was replayed\n{processes.logs()}"
        ready = Pipeline(
            settings, config, f"http://127.0.0.1:{ports['production']}", staging,
            staging_captured, cases,
        )  # fmt: skip
        for value in values:
            result = decode_result(value)
            if result.path == "/checkout" and result.group in groups:
                ready.results.setdefault(groups[result.group], []).append(result)
        yield ready
    finally:
        for proc in servers:
            stop_server(proc)
        processes.stop()
        sink_pair.close()


@pytest.mark.parametrize("name", STAGING)
def test_mirrored_requests_reach_no_sink(pipeline: Pipeline, name: str) -> None:
    staging = pipeline.staging[name]
    results = pipeline.results[name]
    assert len(results) >= CHECKOUTS
    for result in results:
        assert result.status == 200, result
        assert {k.lower(): v for k, v in result.headers}["x-shadowtap-guard"] == "mirrored"
        answer = orjson.loads(result.body)
        assert answer.pop("mirrored") is True
        assert set(answer.values()) == {"blocked"}, answer
    for case in pipeline.mirrored_cases:
        assert staging.arrived(case) == (0, 0)


@pytest.mark.parametrize("name", STAGING)
def test_ordinary_requests_reach_every_sink(pipeline: Pipeline, name: str) -> None:
    staging = pipeline.staging[name]
    case = _case()
    answer = staging.checkout(case)
    assert answer.status_code == 200, answer.text
    effects = answer.json()
    assert effects.pop("mirrored") is False
    assert set(effects.values()) == {"sent"}, effects
    mail = len(MAIL_EFFECTS & set(effects))
    assert staging.arrived(case) == (len(effects) - mail, mail)
    assert "x-shadowtap-guard" not in answer.headers


def _marking(case: str, key: str, age_ms: int = 0) -> dict[str, str]:
    rid = f"forged-{case}"
    now = time.time_ns() // 1_000_000 - age_ms
    target = f"/checkout?case={case}"
    return {
        "X-Shadowtap-Id": rid,
        "X-Shadowtap-Signature": Marker(key).sign("POST", target, rid, now_ms=now),
    }


@pytest.mark.parametrize("name", STAGING)
@pytest.mark.parametrize(
    ("key", "age_ms", "verdict"),
    [("a guessed key", 0, "bad-signature"), (KEY, 3_600_000, "expired")],
    ids=["forged", "expired"],
)
def test_a_forged_or_expired_marking_is_not_trusted(
    pipeline: Pipeline, name: str, key: str, age_ms: int, verdict: str
) -> None:
    staging = pipeline.staging[name]
    case = _case()
    answer = staging.checkout(case, _marking(case, key, age_ms))
    assert answer.status_code == 403
    assert f"marking is {verdict}" in answer.text
    assert staging.arrived(case) == (0, 0)


def test_capture_on_staging_drops_marked_requests(pipeline: Pipeline) -> None:
    ordinary = {name: _case() for name in STAGING}
    for name, case in ordinary.items():
        assert pipeline.staging[name].checkout(case).status_code == 200

    def cases(values: list[bytes]) -> set[str]:
        return {decode(v).query.removeprefix("case=") for v in values}

    values = _read(
        pipeline.settings.kafka,
        pipeline.staging_captured,
        lambda values: set(ordinary.values()) <= cases(values),
        60,
    )
    captured = cases(values)
    assert set(ordinary.values()) <= captured  # ordinary staging traffic is captured
    assert not set(pipeline.mirrored_cases) & captured  # mirrored traffic never is


def _doctor(
    pipeline: Pipeline, target: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, str]]:
    capsys.readouterr()
    code = main(["doctor", "--json", "--config", str(pipeline.config), "--target", target])
    report = json.loads(capsys.readouterr().out)
    return code, {f["check"]: f["status"] for f in report["findings"]}


def test_doctor_fails_on_the_production_address_and_passes_on_staging(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    code, production = _doctor(pipeline, pipeline.production, capsys)
    assert code == 1 and production["production-target"] == "fail", production
    code, staging = _doctor(pipeline, pipeline.staging["fastapi"].base, capsys)
    assert code == 0, staging
    expected = {
        "kafka": "pass", "production-target": "pass", "marking-key": "pass",
        "target-answers": "pass", "guard": "pass", "scrub-key": "pass",
        "capture-hash-key": "pass", "collector-secret": "pass", "topics": "pass",
        "idempotency": "warn",  # POST /checkout is replayed; the app does not say it dedups
    }  # fmt: skip
    assert staging == expected


def test_replay_refuses_a_production_target(pipeline: Pipeline) -> None:
    command = [
        sys.executable, "-m", "shadowtap.cli", "replay", "--config", str(pipeline.config),
        "--target", pipeline.production, "--group", f"refused-{uuid.uuid4().hex[:6]}",
    ]  # fmt: skip
    env = capture_env(pipeline.settings.kafka.bootstrap, pipeline.settings.topics.captured)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 1, proc.stderr
    assert "production-target" in message and "--allow-production-target" in message
    assert "refused to replay to" in message
