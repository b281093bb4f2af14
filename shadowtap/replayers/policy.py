"""Delivery policy: timeouts, retries with backoff and jitter, and the HTTP client.

Usage::

    policy = Policy.from_settings(settings.replayer)
    client = make_client(settings.replayer)          # or any httpx.AsyncClient (tests)
    delivery = await deliver(client, outgoing, policy)

Settings (section ``[replayer]``):

- ``timeout_s`` (10) per attempt, ``connect_timeout_s`` (3) for the connection;
- ``retries`` (0: off, the staging default; set e.g. 5 for DR) extra attempts after a
  timeout, a dropped connection or a status in ``retry_statuses`` (e.g. ``[502, 503, 504]``);
- ``backoff_base_s`` (0.1), ``backoff_max_s`` (5): exponential backoff with jitter
  (``d = min(max, base·2^n)``, wait uniformly in ``[d/2, d]``);
- ``connect_retry_s`` (60): a request that could not even connect never reached the target,
  so it is retried — whatever ``retries`` says — for this long before it fails: a target
  that is down makes lag grow instead of filling the DLQ, and the worker catches up when
  it returns (0 disables);
- ``verify_tls`` (true), ``ca_file`` (PEM bundle of a private CA);
- ``transport``: ``aiohttp`` (httpx API on aiohttp's connection pool, several times faster
  at high concurrency, HTTP/1.1) or ``httpx`` (its own pool; ``http2 = true`` needs it).

Redirects are never followed: a 3xx is the target's answer and is recorded as such, so a
mirrored request can never be sent to another host.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from shadowtap.config import ReplayerSettings
from shadowtap.envelope import Headers
from shadowtap.errors import ConfigError
from shadowtap.replayers.rewrite import Outgoing

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Policy:
    """How hard to try one delivery."""

    timeout_s: float = 10.0
    connect_timeout_s: float = 3.0
    retries: int = 0
    retry_statuses: frozenset[int] = frozenset()
    backoff_base_s: float = 0.1
    backoff_max_s: float = 5.0
    connect_retry_s: float = 60.0
    body_limit: int = 4096

    @classmethod
    def from_settings(cls, s: ReplayerSettings) -> Policy:
        if s.retries < 0 or s.timeout_s <= 0 or s.connect_timeout_s <= 0:
            raise ConfigError("replayer.retries must be ≥ 0 and timeouts positive")
        return cls(
            timeout_s=s.timeout_s,
            connect_timeout_s=s.connect_timeout_s,
            retries=s.retries,
            retry_statuses=frozenset(s.retry_statuses),
            backoff_base_s=s.backoff_base_s,
            backoff_max_s=s.backoff_max_s,
            connect_retry_s=s.connect_retry_s,
            body_limit=s.result_body_limit,
        )

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before attempt ``attempt + 1`` (attempt counts from 1)."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + rand() * ceiling / 2


@dataclass(slots=True)
class Delivery:
    """What came of one delivery, after every attempt."""

    status: int | None = None
    headers: Headers | None = None
    body: bytes = b""
    body_size: int = 0
    truncated: bool = False
    duration_ms: float = 0.0
    attempts: int = 0
    error: str = ""
    error_kind: str = ""

    @property
    def failed(self) -> bool:
        return self.status is None


def classify(exc: BaseException) -> str:
    """A short reason for a transport error: connect, timeout, disconnected or protocol.

    ``connect`` means the request never left: always safe to retry. httpx-aiohttp maps
    several aiohttp errors onto httpx classes loosely (a server disconnect surfaces as
    ConnectTimeout), so the aiohttp cause decides when there is one.
    """
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        import aiohttp

        if isinstance(cause, aiohttp.ClientConnectorError):
            return "connect"
        if isinstance(cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
            return "timeout"
        if isinstance(cause, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
            return "disconnected"
        if isinstance(cause, aiohttp.ClientPayloadError):
            return "disconnected"
        return "protocol"
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return "disconnected"
    return "protocol"


async def deliver(
    client: httpx.AsyncClient,
    out: Outgoing,
    policy: Policy,
    *,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[str], None] | None = None,
) -> Delivery:
    """Send ``out`` with ``policy``; never raises for HTTP or transport failures."""
    result = Delivery()
    first_connect_failure: float | None = None
    started = time.perf_counter()
    while True:
        result.attempts += 1
        attempt_started = time.perf_counter()
        try:
            await _attempt(client, out, policy, result)
        except httpx.TransportError as exc:
            kind = classify(exc)
            result.status, result.headers = None, None
            result.error_kind, result.error = kind, f"{type(exc).__name__}: {exc}"[:500]
            if kind == "connect" and policy.connect_retry_s > 0:
                now = time.monotonic()
                first_connect_failure = first_connect_failure or now
                if now - first_connect_failure < policy.connect_retry_s:
                    if on_retry:
                        on_retry(kind)
                    await sleep(policy.backoff(min(result.attempts, 30)))
                    continue
            if result.attempts <= policy.retries:
                if on_retry:
                    on_retry(kind)
                await sleep(policy.backoff(result.attempts))
                continue
            result.duration_ms = (time.perf_counter() - started) * 1000
            return result
        result.duration_ms = (time.perf_counter() - attempt_started) * 1000
        if result.status in policy.retry_statuses:
            if result.attempts <= policy.retries:
                if on_retry:
                    on_retry(f"status-{result.status}")
                await sleep(policy.backoff(result.attempts))
                continue
            # Out of retries on a retryable status: the target never accepted it.
            result.error_kind = f"status-{result.status}"
            result.error = f"target answered {result.status} after {result.attempts} attempts"
        else:
            result.error_kind, result.error = "", ""
        return result


async def _attempt(
    client: httpx.AsyncClient, out: Outgoing, policy: Policy, result: Delivery
) -> None:
    request = client.build_request(
        out.method, out.url, headers=out.headers, content=out.body or None, timeout=policy.timeout
    )
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        body = bytearray()
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            room = policy.body_limit - len(body)
            if room > 0:
                body += chunk[:room]
    finally:
        await response.aclose()
    result.status = response.status_code
    result.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
    result.body = bytes(body)
    result.body_size = size
    result.truncated = size > len(body)


def make_client(settings: ReplayerSettings) -> httpx.AsyncClient:
    """The HTTP client a worker uses when none is injected (pool sized to the window)."""
    verify: ssl.SSLContext | bool = settings.verify_tls
    if settings.ca_file:
        try:
            verify = ssl.create_default_context(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"replayer.ca_file {settings.ca_file!r}: {exc}") from exc
    limits = httpx.Limits(
        max_connections=settings.max_in_flight, max_keepalive_connections=settings.max_in_flight
    )
    transport: httpx.AsyncBaseTransport
    if settings.transport == "aiohttp" and not settings.http2:
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(verify=verify, limits=limits, trust_env=False)
    else:
        transport = httpx.AsyncHTTPTransport(
            verify=verify, limits=limits, http2=settings.http2, trust_env=False
        )
    client = httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
    )
    # Mirrored requests carry the recorded headers only, not httpx's defaults.
    client.headers.clear()
    return client
