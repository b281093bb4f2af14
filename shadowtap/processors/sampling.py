"""Sampling: keep a deterministic percentage of traffic, per route if configured.

Settings (``[processor]``):

- ``sample_percent`` — global percentage kept (0–100, default 100);
- ``sample_rules`` — ``[{path = "/api/search*", methods = ["GET"], percent = 10,
  rate_per_s = 50}]``; the first matching rule wins over the global percentage, and
  ``rate_per_s`` caps that route so one hot endpoint cannot crowd out the rest (a token
  bucket, :mod:`shadowtap.tokenbucket`, with bursts of up to one second's worth);
- ``sample_by`` — ``"id"`` (each request on its own) or ``"session"`` (whole sessions are
  kept or dropped together, keyed by ``session_header`` / ``session_cookie``, else by the
  Kafka record key, which capture sets to the hashed session key).

The decision hashes the key (:mod:`shadowtap.sampling`, the hash capture's
``sample_percent`` uses too), so every worker and every restart decides the same way::

    sampler = Sampler.from_settings(settings.processor)
    reason = sampler.drop_reason(env, kafka_key)     # "sampled-out", "rate-capped" or None
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from shadowtap.config import ProcessorSettings, SampleRule
from shadowtap.envelope import Envelope
from shadowtap.headers import cookie_value
from shadowtap.rules import RouteMatcher
from shadowtap.sampling import should_sample
from shadowtap.tokenbucket import TokenBucket


class _Rule:
    __slots__ = ("cap", "match", "percent")

    def __init__(self, rule: SampleRule, clock: Callable[[], float]) -> None:
        self.match = RouteMatcher.of(rule)
        self.percent = rule.percent
        self.cap = (
            TokenBucket(rule.rate_per_s, burst=rule.rate_per_s, clock=clock)
            if rule.rate_per_s > 0
            else None
        )


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
                value = cookie_value(env.headers, self._cookie)
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
