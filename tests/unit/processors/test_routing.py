"""Routing rules: first match wins, default to mirror, empty topic drops."""

from __future__ import annotations

from shadowtap.config import RouteRule
from shadowtap.envelope import Envelope
from shadowtap.processors.routing import Router


def test_rules() -> None:
    router = Router(
        [
            RouteRule(topic="api", path="/api/*", methods=("GET", "post")),
            RouteRule(topic="", path="/admin*"),
            RouteRule(topic="rx", path="^/v[0-9]+/"),
        ],
        default="mirror",
    )
    assert router.topic_for(Envelope(method="POST", path="/api/orders")) == "api"
    assert router.topic_for(Envelope(method="DELETE", path="/api/orders")) == "mirror"
    assert router.topic_for(Envelope(method="GET", path="/admin/users")) is None
    assert router.topic_for(Envelope(method="GET", path="/v2/x")) == "rx"
    assert router.topic_for(Envelope(method="GET", path="/")) == "mirror"


def test_default_is_everything_to_mirror() -> None:
    assert Router([], "mirror").topic_for(Envelope(method="GET", path="/x")) == "mirror"
