"""Routing: send subsets of the traffic to other topics; by default everything to mirror.

Settings: ``processor.routes = [{topic = "shadowtap.mirror.api", path = "/api/*",
methods = ["GET", "POST"]}]``. The first matching rule wins; ``topic = ""`` drops the
request (counted as ``unrouted``); a request no rule matches goes to ``topics.mirror``::

    router = Router(settings.processor.routes, default=settings.topics.mirror)
    topic = router.topic_for(env)        # None: dropped
"""

from __future__ import annotations

from collections.abc import Sequence

from shadowtap.config import RouteRule
from shadowtap.envelope import Envelope
from shadowtap.rules import RouteMatcher


class Router:
    """Chooses the output topic of a request."""

    __slots__ = ("_default", "_rules")

    def __init__(self, rules: Sequence[RouteRule], default: str) -> None:
        self._rules = [(RouteMatcher(r.path, r.methods), r.topic) for r in rules]
        self._default = default

    def topic_for(self, env: Envelope) -> str | None:
        for match, topic in self._rules:
            if match.matches(env.method, env.path):
                return topic or None
        return self._default
