"""Rewrite a mirrored request for one target (pure: no I/O after construction).

Usage::

    rw = Rewriter(settings.replayer)          # validates the target URL, reads secrets once
    reason = rw.blocked(env)                  # "denied" / "not-allowed" / None
    out = rw.rewrite(env)                     # Outgoing(method, url, headers, body, record_id)

What ``rewrite`` does, in this order:

1. URL: the target's scheme, host and port; its path (``https://stg/api`` → ``/api``) and
   ``replayer.path_prefix`` go in front of the original path; the raw query is kept.
2. Drops hop-by-hop headers (RFC 9110 §7.6.1: ``Connection`` and every header it names,
   ``Keep-Alive``, ``Transfer-Encoding``, ``TE``, ``Trailer``, ``Upgrade``,
   ``Proxy-Connection``, ``Proxy-Authorization``, ``Proxy-Authenticate``) and the original
   ``Content-Length`` and ``Host``.
3. ``remove_headers`` (names), then ``set_headers`` (replace or add), then ``add_headers``
   (append, keeping existing values).
4. Marks: ``X-Shadowtap-Id: <record id>``, ``X-Mirrored-From: <original host or source>``,
   ``Idempotency-Key: <record id>`` unless the request has one (redeliveries of one record
   always carry the same key). The signature is added per attempt, as it is sent
   (shadowtap.replayers.policy).
5. Credentials, when configured: ``auth_value`` (or the environment variable named by
   ``auth_env``) as header ``auth_header``; or ``principal_accounts`` mapping the record's
   pseudonymised principal ``meta[principal_key]`` to a header value
   (``principal_default`` when unmapped).
6. ``Host``: the target's (``host_header = "target"``, default) or the original one;
   ``Content-Length`` from the body actually sent.

Allow/deny rules (``replayer.allow`` / ``replayer.deny``, see ``shadowtap.rules``): a request
matching any deny rule is never sent; when allow rules exist, only matching requests are.

Incomplete records (:func:`incomplete`): a record whose request body is not the request's
body cannot be replayed faithfully: ``body-unread`` (the production app answered without
reading it, or the client went away mid-body: capture never reads ahead of the app) or
``truncated`` (over ``capture.max_request_body``, or a content type capture does not copy).
``replayer.incomplete`` decides:

- ``skip`` (default): not sent, because an empty or cut body passed off as the request
  would reach staging as a different request (its own side effects, a misleading diff).
  ``blocked()`` says ``incomplete``; the result has ``error_kind: blocked``;
- ``send``: sent with the body the record has (none) and a matching Content-Length, for
  drills that want every request to reach the target.

Either way the result record says ``incomplete: body-unread | truncated`` so the diff can
set it apart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from shadowtap.config import ReplayerSettings
from shadowtap.envelope import Envelope
from shadowtap.errors import ConfigError
from shadowtap.headers import HOP_BY_HOP, Headers, header_value, without
from shadowtap.marking import ID_HEADER
from shadowtap.rules import RouteMatcher

# Why a request body was not captured whole (``meta.request_body_skipped``, see
# shadowtap.producers.core) that means the body never passed through capture.
_UNREAD = frozenset({"not-read", "client-disconnected"})
# Replaced by what we compute; never copied from the record.
_RECOMPUTED = frozenset({"host", "content-length"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Target:
    """A validated target URL, split into the parts the rewrite needs."""

    scheme: str
    host: str
    port: int
    base_path: str
    name: str

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.authority}"

    @property
    def authority(self) -> str:
        """Host[:port] as it goes in a Host header (default port omitted)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"


_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")


def parse_target(url: str, name: str = "") -> Target:
    """Check a target URL at start-up; raise ConfigError saying what is wrong."""
    if not url:
        raise ConfigError("no replay target: pass --target URL or set replayer.target")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"replay target {url!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in _DEFAULT_PORTS:
        raise ConfigError(
            f"replay target {url!r} must start with http:// or https://"
            + (f" (got scheme {parts.scheme!r})" if parts.scheme else "")
        )
    host = parts.hostname or ""
    if not host:
        raise ConfigError(f"replay target {url!r} has no host name")
    if ":" not in host and not _HOST_RE.match(host):
        raise ConfigError(f"replay target {url!r}: {host!r} is not a valid host name")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(
            f"replay target {url!r} must not carry a query, fragment or credentials "
            "(use replayer.auth_value / auth_env for credentials)"
        )
    return Target(
        scheme=parts.scheme,
        host=host,
        port=port or _DEFAULT_PORTS[parts.scheme],
        base_path=parts.path.rstrip("/"),
        name=name or host,
    )


@dataclass(slots=True)
class Outgoing:
    """The request as it will be sent to the target."""

    method: str
    url: str
    headers: Headers
    body: bytes
    record_id: str  # signed with each attempt (shadowtap.replayers.policy)


class Rewriter:
    """Turns envelopes into requests for one target; everything is compiled here once."""

    def __init__(
        self, settings: ReplayerSettings, environ: Mapping[str, str] | None = None
    ) -> None:
        environ = os.environ if environ is None else environ
        self.target = parse_target(settings.target, settings.target_name)
        self._prefix = self.target.base_path + _clean_prefix(settings.path_prefix)
        self._keep_host = settings.host_header == "original"
        self._remove = frozenset(h.lower() for h in settings.remove_headers)
        self._set = [(k, v) for k, v in settings.set_headers.items()]
        self._set_names = frozenset(k.lower() for k in settings.set_headers)
        self._add = [(k, v) for k, v in settings.add_headers.items()]
        self._allow = [RouteMatcher.of(rule) for rule in settings.allow]
        self._deny = [RouteMatcher.of(rule) for rule in settings.deny]
        self._auth_header = settings.auth_header
        self._auth_value = settings.auth_value
        if settings.auth_env:
            value = environ.get(settings.auth_env)
            if not value:
                raise ConfigError(
                    f"replayer.auth_env names {settings.auth_env!r}, which is not set"
                )
            self._auth_value = value
        self._principal_key = settings.principal_key
        self._accounts = dict(settings.principal_accounts)
        self._account_default = settings.principal_default
        self._skip_incomplete = settings.incomplete == "skip"

    def blocked(self, env: Envelope) -> str | None:
        """Why this request must not reach the target, or None.

        ``denied``/``not-allowed`` by the rules, ``incomplete`` when ``replayer.incomplete``
        is ``skip`` and :func:`incomplete` says the body is not all there.
        """
        if self._deny and any(rule.matches(env.method, env.path) for rule in self._deny):
            return "denied"
        if self._allow and not any(rule.matches(env.method, env.path) for rule in self._allow):
            return "not-allowed"
        if self._skip_incomplete and incomplete(env) is not None:
            return "incomplete"
        return None

    def rewrite(self, env: Envelope) -> Outgoing:
        url = f"{self.target.origin}{self._prefix}{env.path or '/'}"
        if env.query:
            url = f"{url}?{env.query}"
        headers = _strip_hop_by_hop(env.headers)
        drop = self._remove | self._set_names
        if drop:
            headers = without(headers, drop)
        headers.extend(self._set)
        headers.extend(self._add)
        headers.append((ID_HEADER, env.id))
        headers.append(("X-Mirrored-From", env.host or env.source))
        if header_value(headers, "idempotency-key") is None:
            headers.append(("Idempotency-Key", env.id))
        credential = self._credential(env)
        if credential is not None:
            headers = without(headers, {self._auth_header.lower()})
            headers.append((self._auth_header, credential))
        host = env.host if self._keep_host and env.host else self.target.authority
        headers.insert(0, ("Host", host))
        if env.body or env.method.upper() in ("POST", "PUT", "PATCH"):
            headers.append(("Content-Length", str(len(env.body))))
        return Outgoing(env.method, url, headers, env.body, env.id)

    def _credential(self, env: Envelope) -> str | None:
        if self._accounts or self._account_default:
            principal = env.meta.get(self._principal_key)
            if isinstance(principal, str) and principal in self._accounts:
                return self._accounts[principal]
            return self._account_default or None
        return self._auth_value or None


def incomplete(env: Envelope) -> str | None:
    """Why the record's request body is not the request's body, or None when it is whole.

    ``body-unread`` or ``truncated`` (see the module docstring). Records from captures
    that did not mark an unread body yet (``truncated: false``, ``body_size`` below the
    declared Content-Length) count as ``body-unread`` too.
    """
    if env.meta.get("request_body_skipped") in _UNREAD:
        return "body-unread"
    if env.truncated:
        return "truncated"
    declared = env.header("content-length")
    seen = max(env.body_size, len(env.body))
    if declared is not None and declared.strip().isdigit() and int(declared) > seen:
        return "body-unread"
    return None


def _clean_prefix(prefix: str) -> str:
    prefix = prefix.strip().rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix


def _strip_hop_by_hop(headers: Headers) -> Headers:
    named: set[str] = set()
    for key, value in headers:
        if key.lower() == "connection":
            named.update(t.strip().lower() for t in value.split(",") if t.strip())
    return [
        (k, v)
        for k, v in headers
        if (low := k.lower()) not in HOP_BY_HOP and low not in _RECOMPUTED and low not in named
    ]
