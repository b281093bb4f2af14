"""Signed marking of mirrored requests: the replayer signs, the guard and capture verify.

A mirrored request carries, next to ``X-Shadowtap-Id: <record id>``, one header::

    X-Shadowtap-Signature: v1; id=<record id>; t=<send time, epoch ms>; sig=<64 hex digits>

``sig`` is an HMAC-SHA256, under the key the replayer shares with the target, of the version,
the method, the request target, the record id and ``t``, one per line:

- the request target is the path and query *as sent*, after the replayer's rewrite (the
  target's base path and ``path_prefix`` included), in one canonical form: percent-escapes are
  decoded and encoded again one way, a space in the query is ``+`` and an empty query is
  dropped, so an HTTP client or a proxy that quotes the URL its own way does not break the
  signature. (Equivalent spellings of one target share a signature; that lets nobody do more
  than have their own request treated as mirrored, which only blocks its side effects);
- ``t`` is the send time of that attempt: each retry signs again, so a 1x drill hours after
  capture still verifies while a signature copied from a log expires.

``Marker.verify`` gives one verdict: ``valid``; ``missing`` (no signature header);
``malformed`` (unparseable, or a version this code does not read); ``wrong-id`` (the signed id
is not the ``X-Shadowtap-Id`` header); ``bad-signature`` (no key gives that MAC: forged,
altered or signed with another key); ``expired`` (authentic, but sent more than ``max_skew_s``
before or after the verifier's clock). MACs are compared in constant time.

Settings, ``[marking]`` (one section for replayer, guard and capture):

- ``key`` — the shared secret, or ``key_env`` — the name of an environment variable that holds
  it. With neither, the development key is used; ``is_development_key`` detects it so that
  start-up checks can refuse it where it matters;
- ``previous_keys`` — keys that still verify (never sign), for a rotation without downtime;
- ``max_skew_s`` — how far a send time may be from the verifier's clock (300);
- ``header`` / ``id_header`` — ``X-Shadowtap-Signature`` / ``X-Shadowtap-Id``.

Usage::

    marker = Marker.from_settings(settings.marking)
    value = marker.sign("POST", request_target(url), record_id)      # replayer, each attempt
    check = marker.verify(method, target, signature, id_header)      # guard and capture
    # target: what the server received, shadowtap.gateway.scope_target / environ_target
    if check.valid: ...

Standard library only (plus shadowtap.errors): production apps, target apps and the replayer
all import it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, unquote_to_bytes, urlsplit

from shadowtap import clock
from shadowtap.errors import ConfigError, ShadowtapError
from shadowtap.gateway import environ_key

if TYPE_CHECKING:
    from shadowtap.config import MarkingSettings

VERSION = "v1"
SIGNATURE_HEADER = "X-Shadowtap-Signature"
ID_HEADER = "X-Shadowtap-Id"
DEFAULT_MAX_SKEW_S = 300.0
DEVELOPMENT_KEY = b"shadowtap-development-marking-key"
MAX_HEADER_LENGTH = 1024

# Characters left unescaped in the canonical target and in the id parameter; everything else
# is percent-encoded with upper-case hex digits.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_ID_SAFE = "-._~:@!$&'()*+,="
_VERSION_RE = re.compile(r"v[0-9]{1,3}")
_TIME_RE = re.compile(r"[0-9]{1,15}")
_MAC_RE = re.compile(r"[0-9a-fA-F]{64}")
_PARAMS = ("id", "t", "sig")


class MalformedMarking(ShadowtapError, ValueError):
    """A signature header that cannot be read; the message says what is wrong with it."""


class Verdict(enum.StrEnum):
    """What verification found; the values are stable labels for logs and metrics."""

    VALID = "valid"
    MISSING = "missing"
    MALFORMED = "malformed"
    WRONG_ID = "wrong-id"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Check:
    """A verdict, what it means in words, and what the header said."""

    verdict: Verdict
    detail: str = ""
    record_id: str = ""
    sent_ms: int | None = None

    @property
    def valid(self) -> bool:
        return self.verdict is Verdict.VALID


@dataclass(frozen=True, slots=True)
class Signature:
    """One parsed signature header (``v1`` only)."""

    record_id: str
    sent_ms: int
    mac: str  # lower-case hex

    def header_value(self) -> str:
        return f"{VERSION}; id={_quote_id(self.record_id)}; t={self.sent_ms}; sig={self.mac}"


@dataclass(frozen=True, slots=True)
class MarkingHeaders:
    """The signature and id headers (in that order) as each reader meets them, from
    ``[marking]``: lower-case bytes (ASGI, the collector's parser) and the environ keys of
    WSGI and of Django's ``META``."""

    asgi: tuple[bytes, bytes]
    environ: tuple[str, str]

    @classmethod
    def of(cls, settings: MarkingSettings) -> MarkingHeaders:
        names = (settings.header, settings.id_header)
        return cls(
            (names[0].lower().encode("latin-1"), names[1].lower().encode("latin-1")),
            (environ_key(names[0]), environ_key(names[1])),
        )


def parse_signature(value: str) -> Signature:
    """Read a signature header; raise MalformedMarking saying what is wrong."""
    if len(value) > MAX_HEADER_LENGTH:
        raise MalformedMarking(f"longer than {MAX_HEADER_LENGTH} characters")
    version, *params = (part.strip() for part in value.split(";"))
    if not _VERSION_RE.fullmatch(version):
        raise MalformedMarking(f"starts with {version[:20]!r}, not a version such as {VERSION}")
    if version != VERSION:
        raise MalformedMarking(f"version {version} is not supported (this shadowtap reads v1)")
    fields: dict[str, str] = {}
    for part in params:
        name, eq, text = part.partition("=")
        if not eq or name not in _PARAMS:
            raise MalformedMarking(f"unknown parameter {part[:20]!r} (expected id, t, sig)")
        if name in fields:
            raise MalformedMarking(f"parameter {name} given twice")
        fields[name] = text
    missing = [name for name in _PARAMS if name not in fields]
    if missing:
        raise MalformedMarking(f"parameter {missing[0]} is missing")
    if not _TIME_RE.fullmatch(fields["t"]):
        raise MalformedMarking("t is not a time in epoch milliseconds")
    if not _MAC_RE.fullmatch(fields["sig"]):
        raise MalformedMarking("sig is not 64 hexadecimal digits")
    try:
        record_id = unquote(fields["id"], errors="strict")
    except UnicodeDecodeError as exc:
        raise MalformedMarking("id is not percent-encoded UTF-8") from exc
    if not record_id:
        raise MalformedMarking("id is empty")
    return Signature(record_id, int(fields["t"]), fields["sig"].lower())


def canonical_target(target: str | bytes) -> str:
    """The path and query in the one form both sides sign (see the module docstring).

    ``str`` targets are taken as UTF-8; pass WSGI's latin-1 strings as bytes.
    """
    if isinstance(target, str):
        target = target.encode("utf-8", "surrogateescape")
    path, _, query = target.partition(b"?")
    canonical = quote(unquote_to_bytes(path), safe=_PATH_SAFE) or "/"
    if query:
        # Clients write a space in a query as %20 or as + (httpx): both become +.
        canonical += "?" + quote(unquote_to_bytes(query).replace(b" ", b"+"), safe=_QUERY_SAFE)
    return canonical


def request_target(url: str) -> str:
    """The origin-form target (path and query) of an absolute URL, as a client sends it."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def resolve_key(settings: MarkingSettings, environ: Mapping[str, str] | None = None) -> bytes:
    """The signing key: ``key_env``'s variable, else ``key``, else the development key."""
    environ = os.environ if environ is None else environ
    if settings.key_env:
        value = environ.get(settings.key_env)
        if not value:
            raise ConfigError(
                f"marking.key_env names {settings.key_env!r}, which is not set: export it "
                "with the key the replayer and the target share"
            )
        return value.encode()
    return settings.key.encode() if settings.key else DEVELOPMENT_KEY


def is_development_key(key: str | bytes) -> bool:
    """Whether ``key`` is the published development key (anyone can sign with it)."""
    return (key.encode() if isinstance(key, str) else key) == DEVELOPMENT_KEY


class Marker:
    """Signs and verifies with one key (plus older keys that still verify)."""

    __slots__ = ("_keys", "max_skew_ms")

    def __init__(
        self,
        key: str | bytes = DEVELOPMENT_KEY,
        *,
        previous_keys: Iterable[str | bytes] = (),
        max_skew_s: float = DEFAULT_MAX_SKEW_S,
    ) -> None:
        keys = tuple(k.encode() if isinstance(k, str) else k for k in (key, *previous_keys))
        if not all(keys):
            raise ConfigError("marking keys must not be empty (set marking.key or key_env)")
        if max_skew_s <= 0:
            raise ConfigError(f"marking.max_skew_s = {max_skew_s} must be more than 0")
        self._keys = keys
        self.max_skew_ms = round(max_skew_s * 1000)

    @classmethod
    def from_settings(
        cls, settings: MarkingSettings, environ: Mapping[str, str] | None = None
    ) -> Marker:
        return cls(
            resolve_key(settings, environ),
            previous_keys=settings.previous_keys,
            max_skew_s=settings.max_skew_s,
        )

    @property
    def is_development(self) -> bool:
        return is_development_key(self._keys[0])

    def sign(
        self, method: str, target: str | bytes, record_id: str, *, now_ms: int | None = None
    ) -> str:
        """The signature header value for one attempt, sent now (or at ``now_ms``)."""
        if not record_id:
            raise ValueError("a marking needs a record id")
        sent = clock.now_ms() if now_ms is None else now_ms
        mac = _mac(self._keys[0], method, target, record_id, sent)
        return Signature(record_id, sent, mac).header_value()

    def verify(
        self,
        method: str,
        target: str | bytes,
        signature: str | None,
        record_id: str | None,
        *,
        now_ms: int | None = None,
    ) -> Check:
        """Whether a request's marking is genuine and current; never raises on bad input."""
        if signature is None:
            return Check(Verdict.MISSING, "no signature header")
        try:
            sig = parse_signature(signature)
        except MalformedMarking as exc:
            return Check(Verdict.MALFORMED, str(exc))
        if record_id != sig.record_id:
            return Check(
                Verdict.WRONG_ID,
                f"signed for id {sig.record_id!r}, but the id header says {record_id!r}",
                sig.record_id,
                sig.sent_ms,
            )
        macs = (_mac(key, method, target, sig.record_id, sig.sent_ms) for key in self._keys)
        if not any(hmac.compare_digest(mac, sig.mac) for mac in macs):
            return Check(
                Verdict.BAD_SIGNATURE,
                "no key verifies it: forged, altered in transit, or signed with another key",
                sig.record_id,
                sig.sent_ms,
            )
        age_ms = (clock.now_ms() if now_ms is None else now_ms) - sig.sent_ms
        if abs(age_ms) > self.max_skew_ms:
            when = "ago" if age_ms > 0 else "in the future"
            return Check(
                Verdict.EXPIRED,
                f"sent {abs(age_ms) / 1000:.0f} s {when}; at most "
                f"{self.max_skew_ms / 1000:.0f} s are accepted (marking.max_skew_s)",
                sig.record_id,
                sig.sent_ms,
            )
        return Check(Verdict.VALID, "", sig.record_id, sig.sent_ms)


def _mac(key: bytes, method: str, target: str | bytes, record_id: str, sent_ms: int) -> str:
    message = "\n".join(
        (VERSION, method.upper(), canonical_target(target), _quote_id(record_id), str(sent_ms))
    )
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _quote_id(record_id: str) -> str:
    return quote(record_id, safe=_ID_SAFE)
