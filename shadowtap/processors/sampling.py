"""Sampling: keep a deterministic percentage of traffic, per route if configured.

Settings (``[processor]``):

- ``sample_percent`` — global percentage kept (0–100, default 100);
- ``sample_rules`` — ``[{path = "/api/search*", methods = ["GET"], percent = 10,
  rate_per_s = 50}]``; the first matching rule wins over the global percentage, and
  ``rate_per_s`` caps that route so one hot endpoint cannot crowd out the rest;
- ``sample_by`` — ``"id"`` (each request on its own) or ``"session"`` (whole sessions are
  kept or dropped together, keyed by ``session_header`` / ``session_cookie``, else by the
  Kafka record key, which capture sets to the hashed session key).

The decision hashes the key, so every worker and every restart decides the same way::

    sampler = Sampler.from_settings(settings.processor)
    reason = sampler.drop_reason(env, kafka_key)     # "sampled-out", "rate-capped" or None
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

from shadowtap.config import ProcessorSettings, SampleRule
from shadowtap.envelope import Envelope
from shadowtap.processors._patterns import RouteMatcher

_BUCKETS = 1_000_000


def bucket(key: str | bytes) -> float:
    """A stable position in [0, 100) for ``key``."""
    data = key.encode() if isinstance(key, str) else key
    n = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")
    return (n % _BUCKETS) * 100.0 / _BUCKETS


def should_sample(key: str | bytes, percent: float) -> bool:
    """Keep ``percent`` % of keys, always the same ones."""
    if percent >= 100.0:
        return True
    if percent <= 0.0:
        return False
    return bucket(key) < percent


class RateCap:
    """Token bucket: at most ``rate`` records a second, bursts up to one second's worth."""

    __slots__ = ("_clock", "_last", "_tokens", "rate")

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._tokens = rate
        self._last = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class _Rule:
    __slots__ = ("cap", "match", "percent")

    def __init__(self, rule: SampleRule, clock: Callable[[], float]) -> None:
        self.match = RouteMatcher(rule.path, rule.methods)
        self.percent = rule.percent
        self.cap = RateCap(rule.rate_per_s, clock) if rule.rate_per_s > 0 else None


class Sampler:
    """The sampling stage; holds the per-route rate caps (the only state)."""

    __slots__ = ("_by_session", "_cookie", "_header", "_percent", "_rules")

    def __init__(
        self,
        percent: float = 100.0,
        rules: Sequence[SampleRule] = (),
        *,
        by: str = "id",
        session_header: str = "",
        session_cookie: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._percent = percent
        self._rules = [_Rule(r, clock) for r in rules]
        self._by_session = by == "session"
        self._header = session_header
        self._cookie = session_cookie

    @classmethod
    def from_settings(
        cls, settings: ProcessorSettings, clock: Callable[[], float] = time.monotonic
    ) -> Sampler:
        return cls(
            settings.sample_percent,
            settings.sample_rules,
            by=settings.sample_by,
            session_header=settings.session_header,
            session_cookie=settings.session_cookie,
            clock=clock,
        )

    def key(self, env: Envelope, kafka_key: bytes | None = None) -> str | bytes:
        """The value the decision hashes: the session key or the request id."""
        if self._by_session:
            if self._header:
                value = env.header(self._header)
                if value:
                    return value
            if self._cookie:
                value = _cookie(env, self._cookie)
                if value:
                    return value
            if kafka_key:
                return kafka_key
        return env.id

    def drop_reason(self, env: Envelope, kafka_key: bytes | None = None) -> str | None:
        """Why this request is not sampled, or None to keep it."""
        rule = next((r for r in self._rules if r.match.matches(env.method, env.path)), None)
        percent = self._percent if rule is None else rule.percent
        if not should_sample(self.key(env, kafka_key), percent):
            return "sampled-out"
        if rule is not None and rule.cap is not None and not rule.cap.allow():
            return "rate-capped"
        return None


def _cookie(env: Envelope, name: str) -> str | None:
    for key, value in env.headers:
        if key.lower() != "cookie":
            continue
        for part in value.split(";"):
            k, sep, v = part.strip().partition("=")
            if sep and k == name:
                return v
    return None
