"""Sampling is deterministic, per route when configured, and rate-capped per route."""

from __future__ import annotations

from shadowtap.config import SampleRule
from shadowtap.envelope import Envelope
from shadowtap.processors.sampling import Sampler
from shadowtap.sampling import should_sample


def _env(i: int, path: str = "/api/x", headers: list[tuple[str, str]] | None = None) -> Envelope:
    return Envelope(method="GET", path=path, id=f"req-{i}", headers=headers or [])


def test_percentage_is_close_and_deterministic() -> None:
    sampler = Sampler(25.0)
    kept = [i for i in range(10_000) if sampler.drop_reason(_env(i)) is None]
    assert 2_300 < len(kept) < 2_700
    again = [i for i in range(10_000) if Sampler(25.0).drop_reason(_env(i)) is None]
    assert kept == again


def test_edges() -> None:
    assert should_sample("x", 100) and not should_sample("x", 0)
    assert Sampler(0).drop_reason(_env(1)) == "sampled-out"


def test_session_affinity_keeps_or_drops_whole_sessions() -> None:
    sampler = Sampler(50.0, by="session", session_header="X-Session")
    for s in range(50):
        decisions = {
            sampler.drop_reason(_env(i, headers=[("X-Session", f"s{s}")])) for i in range(20)
        }
        assert len(decisions) == 1
    by_key = Sampler(50.0, by="session")
    assert len({by_key.drop_reason(_env(i), b"kafka-key-7") for i in range(20)}) == 1


def test_session_cookie() -> None:
    sampler = Sampler(50.0, by="session", session_cookie="sid")
    decisions = {
        sampler.drop_reason(_env(i, headers=[("Cookie", "a=1; sid=abc; b=2")])) for i in range(30)
    }
    assert len(decisions) == 1


def test_route_rule_wins_over_global_percent() -> None:
    sampler = Sampler(100.0, [SampleRule(path="/api/search*", methods=("GET",), percent=0)])
    assert sampler.drop_reason(_env(1, "/api/search?q")) == "sampled-out"
    assert sampler.drop_reason(_env(1, "/api/orders")) is None
    post = Envelope(method="POST", path="/api/search", id="x")
    assert sampler.drop_reason(post) is None


def test_rate_cap_per_route() -> None:
    now = [0.0]
    sampler = Sampler(100.0, [SampleRule(path="/hot", rate_per_s=10)], clock=lambda: now[0])
    kept = sum(sampler.drop_reason(_env(i, "/hot")) is None for i in range(100))
    assert kept == 10
    assert sampler.drop_reason(_env(1, "/cold")) is None  # other routes are not capped
    now[0] += 0.5
    kept = sum(sampler.drop_reason(_env(i, "/hot")) is None for i in range(100))
    assert kept == 5
    assert sampler.drop_reason(_env(1, "/hot")) == "rate-capped"
