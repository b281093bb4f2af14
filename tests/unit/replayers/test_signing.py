"""Every attempt the replayer makes is signed as sent, and the target's real guard trusts it.

The guard here is shadowtap.guard's ASGI middleware in front of a small app, reached through
httpx's in-process ASGI transport: the same verification a staging app runs, without a
server. The e2e test (tests/e2e/test_safe_mirroring.py) does the same through the pipeline.
"""

from __future__ import annotations

from typing import Any

import httpx

from shadowtap.config import Settings
from shadowtap.envelope import Envelope
from shadowtap.guard import GuardMiddleware, is_mirrored
from shadowtap.marking import Marker, canonical_target, parse_signature
from shadowtap.replayers.policy import Policy, deliver
from shadowtap.replayers.rewrite import Rewriter
from shadowtap.types import Receive, Scope, Send

KEY = "replayer-and-target-share-this"


def _settings(**replayer: Any) -> Settings:
    return Settings.load(
        env={},
        overrides={
            "marking": {"key": KEY},
            "replayer": {"target": "http://stg.internal/base", "path_prefix": "/pre", **replayer},
        },
    )


class Target:
    """An app that answers 503 ``failures`` times, then 200; it notes what the guard decided."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.seen: list[tuple[str, str, bool]] = []  # target, signature, is_mirrored()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        target = scope["raw_path"].decode() + "?" + scope["query_string"].decode()
        signature = headers.get(b"x-shadowtap-signature", b"").decode()
        self.seen.append((target, signature, is_mirrored()))
        status = 503 if len(self.seen) <= self.failures else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _client(app: Target, settings: Settings) -> httpx.AsyncClient:
    guarded = GuardMiddleware(app, settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(guarded), base_url="http://stg")


async def test_each_attempt_is_signed_again_and_the_guard_trusts_every_one() -> None:
    settings = _settings(retries=2, retry_statuses=(503,), backoff_base_s=0.01)
    env = Envelope("POST", "/checkout", query="cart=7&x=a b", body=b"{}", host="shop.example")
    out = Rewriter(settings.replayer).rewrite(env)
    app = Target(failures=2)
    async with _client(app, settings) as client:
        delivery = await deliver(
            client, out, Policy.from_settings(settings.replayer, settings.marking)
        )
    assert (delivery.status, delivery.attempts) == (200, 3)
    # The guard ran every attempt as mirrored: its signature verified over the path as sent.
    assert [mirrored for _, _, mirrored in app.seen] == [True, True, True]
    assert {target for target, _, _ in app.seen} == {"/base/pre/checkout?cart=7&x=a%20b"}
    signatures = [parse_signature(signature) for _, signature, _ in app.seen]
    assert len({s.mac for s in signatures}) == 3  # each attempt its own signature
    times = [s.sent_ms for s in signatures]
    assert times == sorted(times) and len(set(times)) == 3
    assert {s.record_id for s in signatures} == {env.id}
    marker = Marker(KEY)
    for target, signature, _ in app.seen:
        assert marker.verify("POST", target, signature, env.id).valid
        assert not marker.verify("GET", target, signature, env.id).valid  # the method counts
    assert canonical_target("/base/pre/checkout?cart=7&x=a%20b") == (
        "/base/pre/checkout?cart=7&x=a+b"
    )


async def test_a_replayer_with_another_key_is_not_trusted() -> None:
    settings = _settings()
    other = Settings.load(
        env={}, overrides={"marking": {"key": "not the target's key"}, "replayer": {}}
    )
    out = Rewriter(settings.replayer).rewrite(Envelope("GET", "/orders/1"))
    app = Target()
    async with _client(app, settings) as client:
        delivery = await deliver(
            client, out, Policy.from_settings(settings.replayer, other.marking)
        )
    assert delivery.status == 403  # the guard's answer to a marking that does not verify
    assert app.seen == []


async def test_a_configured_id_header_is_sent_beside_the_default_one() -> None:
    settings = Settings.load(
        env={},
        overrides={"marking": {"key": KEY, "id_header": "X-Mirror-Id"}, "replayer": {}},
    )
    policy = Policy.from_settings(_settings().replayer, settings.marking)
    out = Rewriter(_settings().replayer).rewrite(Envelope("GET", "/a"))
    sent = dict(policy.marked(out).headers)
    assert sent["X-Mirror-Id"] == sent["X-Shadowtap-Id"] == out.record_id
    check = Marker(KEY).verify("GET", "/base/pre/a", sent["X-Shadowtap-Signature"], out.record_id)
    assert check.valid
    assert "X-Shadowtap-Signature" not in dict(out.headers)  # the attempt's copy is signed
