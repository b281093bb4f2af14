"""Is a replay target production? The one check `shadowtap replay`, `drill` and `doctor` share.

Replaying into production sends every request a second time: a second order, a second
e-mail, a second charge. The records say where production is: each carries the Host it was
sent to (``host``, with ``scheme`` for a default port), and a request that was itself
mirrored names where it came from in ``X-Mirrored-From``. A target is production when its
host and port equal one of those. When the target is not a loopback address it is also
production when it resolves to an address a production host resolves to, on the same port
(a CNAME, a load balancer's second name, an IP written out). Loopback targets are never
resolved: on one machine production and staging differ by port alone, so they are compared
by port and loopback address, where ``localhost`` (and ``*.localhost``) stands for both
``127.0.0.1`` and ``::1`` (RFC 6761), as a client connecting to it would try::

    seen = production_endpoints(recent_records(settings.kafka, settings.topics.mirror))
    reason = production_match("https://staging.internal", seen)   # None, or why it is refused
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

from shadowtap.config import KafkaSettings
from shadowtap.envelope import Envelope, decode
from shadowtap.errors import EnvelopeError
from shadowtap.topicscan import end_offsets, scan

DEFAULT_PORTS = {"http": 80, "https": 443}
# Records read from the end of each partition to learn where production is.
RECENT_PER_PARTITION = 200
# Production host names resolved at most (a flood of Host values must not mean a flood of DNS).
_RESOLVE_AT_MOST = 64

Resolver = Callable[[str], set[str]]


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    """A host (lower case, IPv6 without brackets) and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def endpoint_of(authority: str, scheme: str = "http") -> Endpoint | None:
    """``host[:port]`` (or a URL) as an Endpoint; None when it names no host."""
    text = authority.strip()
    if not text:
        return None
    if "://" in text:
        scheme, _, text = text.partition("://")
        text = text.split("/", 1)[0]
    try:
        parts = urlsplit(f"//{text}")
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return None
    return Endpoint(host, port or DEFAULT_PORTS.get(scheme.lower(), 80))


def production_endpoints(records: Iterable[Envelope]) -> set[Endpoint]:
    """Where the records' requests were sent: their Host, and any X-Mirrored-From."""
    found: set[Endpoint] = set()
    for env in records:
        for authority in (env.host, env.header("x-mirrored-from") or ""):
            endpoint = endpoint_of(authority, env.scheme or "http")
            if endpoint is not None:
                found.add(endpoint)
    return found


def recent_records(
    kafka: KafkaSettings,
    topic: str,
    per_partition: int = RECENT_PER_PARTITION,
    timeout_s: float = 15.0,
) -> Iterator[Envelope]:
    """The last ``per_partition`` records of each partition of ``topic`` that decode."""
    ends = end_offsets(kafka, topic, timeout_s)
    starts = {p: max(0, end - per_partition) for p, end in ends.items()}
    for msg in scan(kafka, topic, starts=starts, timeout_s=timeout_s):
        try:
            yield decode(msg.value() or b"")
        except EnvelopeError:
            continue


def production_match(
    target: str,
    production: Iterable[Endpoint],
    resolve: Resolver | None = None,
    resolve_timeout_s: float = 5.0,
) -> str | None:
    """Why ``target`` (a URL) is a production endpoint, or None when it is not one."""
    wanted = endpoint_of(target)
    if wanted is None:
        return None
    same_port = sorted(e for e in production if e.port == wanted.port)
    if wanted in same_port:
        return f"{wanted} is where the recorded production requests were sent"
    if not same_port:
        return None
    if is_loopback(wanted.host) or _unspecified(wanted.host):
        mine = loopback_addresses(wanted.host)
        for endpoint in same_port:
            if is_loopback(endpoint.host) and mine & loopback_addresses(endpoint.host):
                return f"{wanted} is this machine's {endpoint}, where production requests were sent"
        return None
    lookup = resolve or resolve_addresses
    hosts = [wanted.host, *(e.host for e in same_port[:_RESOLVE_AT_MOST])]
    # A resolver that hangs must not hang the check: lookups run in threads left behind.
    pool = ThreadPoolExecutor(max_workers=8)
    futures = {host: pool.submit(lookup, host) for host in dict.fromkeys(hosts)}
    pool.shutdown(wait=False)
    addresses: dict[str, set[str]] = {}
    for host, future in futures.items():
        try:
            addresses[host] = future.result(timeout=resolve_timeout_s)
        except (OSError, FutureTimeout):
            addresses[host] = set()
    mine = addresses[wanted.host]
    for endpoint in same_port:
        shared = mine & addresses.get(endpoint.host, set())
        if shared:
            return (
                f"{wanted} resolves to {', '.join(sorted(shared))}, as production's {endpoint} does"
            )
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_addresses(host: str) -> set[str]:
    """The addresses a loopback host stands for, without asking DNS. ``0.0.0.0`` and ``::``
    as a destination reach this machine (Linux connects them to loopback)."""
    if host == "localhost" or host.endswith(".localhost") or _unspecified(host):
        return {"127.0.0.1", "::1"}
    return {str(ipaddress.ip_address(host))}


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def resolve_addresses(host: str) -> set[str]:
    """Every address ``host`` resolves to (an IP resolves to itself)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return {str(info[4][0]) for info in infos}
