"""The guard in real staging apps under real servers, against a real payment API and mail
server (tests/sinks.py), driven by signed, unsigned, forged and expired requests.

One server per framework (module-scoped): FastAPI under uvicorn, Flask under gunicorn,
Django under gunicorn (WSGI) and under uvicorn (ASGI). Each ``POST /checkout`` fires every
kind of side effect (tests/e2e/apps/guarded.py). The requests are signed here as the replayer
will sign them; no Kafka is involved.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shadowtap.devkafka import free_port
from shadowtap.marking import Marker
from tests.e2e.apps.servers import ROOT, start_server, stop_server
from tests.sinks import HTTPSink, SMTPSink, sinks

KEY = "e2e-marking-key"
MAIL_EFFECTS = {"smtp", "django-mail"}


@dataclass
class Staging:
    framework: str
    base: str
    http: HTTPSink
    smtp: SMTPSink

    def checkout(self, headers: dict[str, str] | None = None) -> tuple[str, httpx.Response]:
        case = uuid.uuid4().hex[:12]
        response = httpx.post(
            f"{self.base}/checkout", headers={"X-Test-Case": case, **(headers or {})}, timeout=30
        )
        return case, response

    def arrived(self, case: str) -> tuple[int, int]:
        """Calls of one case that reached the payment API and the mail server."""
        return len(self.http.matching(f"/{case}")), len(self.smtp.matching(case))


def _command(framework: str, port: int) -> list[str]:
    uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}"]
    app = "tests.e2e.apps.guarded:"
    return {
        "fastapi": [*uvicorn, "--log-level", "warning", app + "fastapi_app"],
        "flask": [*gunicorn, app + "flask_app"],
        "django-wsgi": [*gunicorn, app + "django_app"],
        "django-asgi": [*uvicorn, "--log-level", "warning", app + "django_asgi_app"],
    }[framework]


@pytest.fixture(scope="module")
def guard_sinks() -> Iterator[tuple[HTTPSink, SMTPSink]]:
    yield from sinks()


@pytest.fixture(scope="module", params=["fastapi", "flask", "django-wsgi", "django-asgi"])
def staging(
    request: pytest.FixtureRequest,
    guard_sinks: tuple[HTTPSink, SMTPSink],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Staging]:
    framework: str = request.param
    http, smtp = guard_sinks
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOWTAP_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "GUARDED_APP": framework.split("-", maxsplit=1)[0],
        "SHADOWTAP_MARKING_KEY": KEY,
        "SINK_HTTP": http.url,
        "SINK_SMTP_PORT": str(smtp.port),
    }
    log = tmp_path_factory.mktemp(framework) / "server.log"
    proc = start_server(_command(framework, port), port, env, log)
    try:
        yield Staging(framework, f"http://127.0.0.1:{port}", http, smtp)
    finally:
        stop_server(proc)


def _marking(rid: str, key: str = KEY, sent_ms: int | None = None) -> dict[str, str]:
    return {
        "X-Shadowtap-Id": rid,
        "X-Shadowtap-Signature": Marker(key).sign("POST", "/checkout", rid, now_ms=sent_ms),
    }


def _effects(result: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in result.items() if k != "mirrored"}


def test_ordinary_requests_reach_every_sink(staging: Staging) -> None:
    case, response = staging.checkout()
    assert response.status_code == 200, response.text
    result = response.json()
    effects = _effects(result)
    assert result["mirrored"] is False
    assert set(effects.values()) == {"sent"}, effects
    mail = len(MAIL_EFFECTS & set(effects))
    assert staging.arrived(case) == (len(effects) - mail, mail)
    assert "x-shadowtap-guard" not in response.headers


def test_signed_mirrored_requests_reach_no_sink(staging: Staging) -> None:
    rid = str(uuid.uuid4())
    case, response = staging.checkout(_marking(rid))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["mirrored"] is True
    assert set(_effects(result).values()) == {"blocked"}, result
    assert staging.arrived(case) == (0, 0)
    assert response.headers["x-shadowtap-guard"] == "mirrored"


@pytest.mark.parametrize(
    ("marking", "verdict"),
    [
        (lambda rid: _marking(rid, key="a guessed key"), "bad-signature"),
        (lambda rid: _marking(rid, sent_ms=time.time_ns() // 1_000_000 - 3_600_000), "expired"),
        (lambda rid: {"X-Shadowtap-Id": rid}, "missing"),
    ],
    ids=["forged", "expired", "unsigned"],
)
def test_untrusted_markings_are_rejected_before_the_app_runs(
    staging: Staging, marking: Any, verdict: str
) -> None:
    case, response = staging.checkout(marking(str(uuid.uuid4())))
    assert response.status_code == 403
    assert f"marking is {verdict}" in response.text
    assert staging.arrived(case) == (0, 0)
