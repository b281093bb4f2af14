"""Health-check and monitoring probes are dropped; real traffic is kept."""

from __future__ import annotations

import pytest

from shadowtap.config import ProcessorSettings
from shadowtap.envelope import Envelope
from shadowtap.processors.filters import ProbeFilter


def _env(path: str, agent: str = "Mozilla/5.0") -> Envelope:
    return Envelope(method="GET", path=path, headers=[("User-Agent", agent)])


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/healthz",
        "/health/live",
        "/ready",
        "/readyz",
        "/livez",
        "/metrics",
        "/ping",
        "/status",
    ],
)
def test_default_probe_paths_are_dropped(path: str) -> None:
    assert ProbeFilter.from_settings(ProcessorSettings()).drop_reason(_env(path)) == "health-path"


@pytest.mark.parametrize("path", ["/api/status", "/api/health-insurance", "/metrics/x", "/"])
def test_ordinary_paths_are_kept(path: str) -> None:
    assert ProbeFilter.from_settings(ProcessorSettings()).drop_reason(_env(path)) is None


@pytest.mark.parametrize(
    "agent",
    [
        "kube-probe/1.29",
        "ELB-HealthChecker/2.0",
        "GoogleHC/1.0",
        "Prometheus/2.51.0",
        "Consul Health Check",
        "Pingdom.com_bot_version_1.4",
        "Mozilla/5.0+(compatible; UptimeRobot/2.0)",
    ],
)
def test_probe_user_agents_are_dropped(agent: str) -> None:
    probe = ProbeFilter.from_settings(ProcessorSettings())
    assert probe.drop_reason(_env("/api/x", agent)) == "probe-agent"


def test_config_extends_and_overrides() -> None:
    extended = ProbeFilter.from_settings(
        ProcessorSettings(extra_filter_paths=("^/internal/.*",), extra_filter_user_agents=("Bot9",))
    )
    assert extended.drop_reason(_env("/internal/x")) == "health-path"
    assert extended.drop_reason(_env("/x", "my bot9 agent")) == "probe-agent"
    assert extended.drop_reason(_env("/healthz")) == "health-path"
    replaced = ProbeFilter.from_settings(ProcessorSettings(filter_paths=(), filter_user_agents=()))
    assert replaced.drop_reason(_env("/healthz", "kube-probe/1.29")) is None
