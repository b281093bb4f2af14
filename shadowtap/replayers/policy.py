"""Delivery policy: timeouts, retries with backoff and jitter, and the HTTP client.

Usage::

    policy = Policy.from_settings(settings.replayer, settings.marking)
    sender = make_sender(settings.replayer)          # or HttpxSender(any httpx.AsyncClient)
    delivery = await deliver(sender, outgoing, policy)

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
- ``transport``: ``aiohttp`` (default: aiohttp's client directly, the fastest, HTTP/1.1),
  ``httpx-aiohttp`` (the httpx API on aiohttp's pool) or ``httpx`` (its own pool, slower at
  high concurrency; ``http2 = true`` uses it). An injected ``httpx.AsyncClient`` (tests,
  custom transports) always goes through :class:`HttpxSender`.

Redirects are never followed: a 3xx is the target's answer and is recorded as such, so a
mirrored request can never be sent to another host.

Every attempt is signed as it is sent (``Policy.marked``, shadowtap.marking): an HMAC under
``[marking]``'s key over the method, the path and query as sent (the target's base path and
``path_prefix`` included), the record id and that attempt's send time, in
``X-Shadowtap-Signature``. A retry signs again with its own time, so the target's guard can
trust the request and a signature copied from a log expires.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import httpx

from shadowtap.config import MarkingSettings, ReplayerSettings
from shadowtap.errors import ConfigError, ReplayError, RetryableReplayError
from shadowtap.marking import ID_HEADER, SIGNATURE_HEADER, Marker, request_target
from shadowtap.replayers.rewrite import Outgoing
from shadowtap.results import Delivery

Sleep = Callable[[float], Awaitable[None]]


# A result keeps two bodies in base64 (4/3 each) plus headers: 320 KiB each stays under
# librdkafka's and the broker's 1 MB message default, so no result is refused for its size.
MAX_RESULT_BODY = 320 * 1024


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
    body_limit: int = 64 * 1024
    # Signs each attempt; None only where no target verifies (unit tests of the policy).
    marker: Marker | None = None
    signature_header: str = SIGNATURE_HEADER
    id_header: str = ""  # set when marking.id_header is not the X-Shadowtap-Id rewrite sets

    @classmethod
    def from_settings(cls, s: ReplayerSettings, marking: MarkingSettings) -> Policy:
        if s.retries < 0 or s.timeout_s <= 0 or s.connect_timeout_s <= 0:
            raise ConfigError("replayer.retries must be ≥ 0 and timeouts positive")
        if not 0 <= s.result_body_limit <= MAX_RESULT_BODY:
            raise ConfigError(
                f"replayer.result_body_limit = {s.result_body_limit}: a result holds two bodies"
                f" (target's and production's) in base64 and must fit a Kafka message (1 MB by"
                f" default); set it between 0 and {MAX_RESULT_BODY} (capture's default 65536)"
            )
        return cls(
            timeout_s=s.timeout_s,
            connect_timeout_s=s.connect_timeout_s,
            retries=s.retries,
            retry_statuses=frozenset(s.retry_statuses),
            backoff_base_s=s.backoff_base_s,
            backoff_max_s=s.backoff_max_s,
            connect_retry_s=s.connect_retry_s,
            body_limit=s.result_body_limit,
            marker=Marker.from_settings(marking),
            signature_header=marking.header,
            id_header="" if marking.id_header.lower() == ID_HEADER.lower() else marking.id_header,
        )

    def marked(self, out: Outgoing) -> Outgoing:
        """``out`` as one attempt sends it now: signed with this moment as its send time."""
        if self.marker is None:
            return out
        value = self.marker.sign(out.method, request_target(out.url), out.record_id)
        headers = [*out.headers, (self.signature_header, value)]
        if self.id_header:
            headers.append((self.id_header, out.record_id))
        return replace(out, headers=headers)

    @property
    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before attempt ``attempt + 1`` (attempt counts from 1)."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + rand() * ceiling / 2


# What each transport failure means, httpx's and aiohttp's alike: the first row whose classes
# match decides, so narrower classes come first (ConnectTimeout before TimeoutException,
# ClientConnectorError before ClientOSError). Anything else is ``protocol``.
# ``connect`` means the request never left: always safe to try again.
TransportFailures = tuple[tuple[tuple[type[BaseException], ...], str], ...]


@functools.cache
def transport_failures() -> TransportFailures:
    import aiohttp

    return (
        (
            (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.PoolTimeout,
                aiohttp.ClientConnectorError,
            ),
            "connect",
        ),
        ((httpx.TimeoutException, aiohttp.ServerTimeoutError, TimeoutError), "timeout"),
        (
            (
                httpx.ReadError,
                httpx.WriteError,
                httpx.RemoteProtocolError,
                aiohttp.ServerDisconnectedError,
                aiohttp.ClientPayloadError,
                aiohttp.ClientOSError,
            ),
            "disconnected",
        ),
    )


def classify(exc: BaseException) -> str:
    """The kind of a transport failure: connect, timeout, disconnected or protocol.

    httpx-aiohttp maps several aiohttp errors onto httpx classes loosely (a server disconnect
    surfaces as ConnectTimeout), so the aiohttp cause of an httpx error decides.
    """
    cause = exc.__cause__
    if (
        isinstance(exc, httpx.HTTPError)
        and cause is not None
        and type(cause).__module__.startswith("aiohttp")
    ):
        exc = cause
    for classes, kind in transport_failures():
        if isinstance(exc, classes):
            return kind
    return "protocol"


def transport_error(exc: BaseException) -> RetryableReplayError:
    """A transport failure as the tree's error: every kind may succeed when tried again
    (``connect`` for ``connect_retry_s``, the others for ``retries``)."""
    return RetryableReplayError(classify(exc), f"{type(exc).__name__}: {exc}")


async def deliver(
    sender: Sender | httpx.AsyncClient,
    out: Outgoing,
    policy: Policy,
    *,
    sleep: Sleep = asyncio.sleep,
    on_retry: Callable[[str], None] | None = None,
) -> Delivery:
    """Send ``out`` with ``policy``; never raises for HTTP or transport failures."""
    if isinstance(sender, httpx.AsyncClient):
        sender = HttpxSender(sender)
    result = Delivery()
    first_connect_failure: float | None = None
    started = time.perf_counter()
    while True:
        result.attempts += 1
        attempt_started = time.perf_counter()
        try:
            await sender.attempt(policy.marked(out), policy, result)
        except ReplayError as exc:
            kind = exc.kind
            result.status, result.headers = None, []
            result.error_kind, result.error = kind, str(exc)[:500]
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


class Sender(Protocol):
    """Sends one attempt; fills ``result`` or raises a ReplayError (``transport_error``)."""

    async def attempt(self, out: Outgoing, policy: Policy, result: Delivery) -> None: ...

    async def aclose(self) -> None: ...


class HttpxSender:
    """Any ``httpx.AsyncClient``: the test seam (MockTransport) and the HTTP/2 path."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def attempt(self, out: Outgoing, policy: Policy, result: Delivery) -> None:
        request = self.client.build_request(
            out.method,
            out.url,
            headers=out.headers,
            content=out.body or None,
            timeout=policy.timeout,
        )
        try:
            response = await self.client.send(request, stream=True, follow_redirects=False)
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
        except httpx.TransportError as exc:
            raise transport_error(exc) from exc
        result.status = response.status_code
        result.headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw
        ]
        result.body = bytes(body)
        result.body_size = size
        result.truncated = size > len(body)

    async def aclose(self) -> None:
        await self.client.aclose()


# aiohttp adds these when absent; a mirrored request carries the recorded headers only.
_NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class AiohttpSender:
    """aiohttp's client directly: about three times the throughput of the httpx API."""

    def __init__(self, settings: ReplayerSettings) -> None:
        self._ssl = _ssl_option(settings)
        self._limit = settings.max_in_flight
        self._session: Any = None
        self._timeouts: tuple[Policy, Any] | None = None

    def _open(self) -> Any:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self._limit, ssl=self._ssl)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, trust_env=False
        )
        return self._session

    async def attempt(self, out: Outgoing, policy: Policy, result: Delivery) -> None:
        import aiohttp
        from yarl import URL

        session = self._session or self._open()
        try:
            async with session.request(
                out.method,
                URL(out.url, encoded=True),
                headers=out.headers,
                data=out.body or None,
                allow_redirects=False,
                skip_auto_headers=_NO_AUTO_HEADERS,
                timeout=self._timeout(policy),
            ) as response:
                body = bytearray()
                size = 0
                async for chunk in response.content.iter_chunked(65536):
                    size += len(chunk)
                    room = policy.body_limit - len(body)
                    if room > 0:
                        body += chunk[:room]
                result.status = response.status
                result.headers = [
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers
                ]
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(exc) from exc
        result.body = bytes(body)
        result.body_size = size
        result.truncated = size > len(body)

    def _timeout(self, policy: Policy) -> Any:
        import aiohttp

        if self._timeouts is None or self._timeouts[0] is not policy:
            timeout = aiohttp.ClientTimeout(
                total=policy.timeout_s, sock_connect=policy.connect_timeout_s
            )
            self._timeouts = (policy, timeout)
        return self._timeouts[1]

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _ssl_option(settings: ReplayerSettings) -> ssl.SSLContext | bool:
    if settings.ca_file:
        try:
            return ssl.create_default_context(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"replayer.ca_file {settings.ca_file!r}: {exc}") from exc
    return settings.verify_tls


def make_sender(settings: ReplayerSettings) -> Sender:
    """The sender a worker uses when no client is injected (see ``transport``)."""
    if settings.transport == "aiohttp" and not settings.http2:
        return AiohttpSender(settings)
    return HttpxSender(make_client(settings))


def make_client(settings: ReplayerSettings) -> httpx.AsyncClient:
    """The HTTP client a worker uses when none is injected (pool sized to the window)."""
    verify = _ssl_option(settings)
    limits = httpx.Limits(
        max_connections=settings.max_in_flight, max_keepalive_connections=settings.max_in_flight
    )
    transport: httpx.AsyncBaseTransport
    if settings.transport != "httpx" and not settings.http2:
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
