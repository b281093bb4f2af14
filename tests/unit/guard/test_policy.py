"""Allowlist entries, bad guard settings, and counters any Prometheus scraper can read."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shadowtap.errors import ConfigError
from shadowtap.guard.metrics import GuardMetrics

from .conftest import make_guard, mirrored


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("search.staging", 9200, True),
        ("SEARCH.staging", 443, True),
        ("orders.svc.cluster.local", 80, True),
        ("svc.cluster.local", 80, False),
        ("127.0.0.1", 9200, True),
        ("127.0.0.1", 9201, False),
        ("::1", 8080, True),
        ("[::1]", 8080, True),
        ("::1", 8081, False),
        ("fe80::1", 1, True),
        ("api.stripe.com", 443, False),
    ],
)
def test_allow_hosts_take_names_globs_ports_and_ipv6(host: str, port: int, allowed: bool) -> None:
    guard = make_guard(
        allow_hosts=[
            "search.staging",
            "*.svc.cluster.local",
            "127.0.0.1:9200",
            "[::1]:8080",
            "fe80::1",
        ]
    )
    assert guard.policy.allows(host, port) is allowed


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        ({"allow_hosts": [":80"]}, "entry ':80' has no host"),
        ({"allow_hosts": ["a:http"]}, "port 'http' is not a number"),
        ({"respond_status": 42}, "respond_status = 42 is not an HTTP status"),
    ],
)
def test_bad_guard_settings_fail_at_start(guard: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_guard(**guard)


def test_counters_render_in_prometheus_text_format() -> None:
    guard = make_guard()
    with mirrored(guard):
        guard.policy.block("http", 'POST http://a"b', "r1")
        guard.policy.block("smtp", "smtp://mail:25", "r1")
        guard.policy.block("http", "POST http://c", "r2")
    guard.metrics.count_marked("expired", "rejected")
    families = {f.name: f for f in text_string_to_metric_families(guard.metrics.render())}
    blocked = {
        (s.labels["effect"], s.labels["action"]): s.value
        for s in families["shadowtap_guard_blocked"].samples
    }
    assert blocked == {("http", "raise"): 2.0, ("smtp", "raise"): 1.0}
    marked = families["shadowtap_guard_marked_requests"].samples[0]
    assert (marked.labels, marked.value) == ({"verdict": "expired", "outcome": "rejected"}, 1.0)
    assert GuardMetrics().render().count("\n") == 4  # HELP and TYPE lines, no samples
