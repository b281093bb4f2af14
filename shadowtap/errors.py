"""One exception tree for shadowtap.

Library errors (confluent-kafka, httpx, Presidio, TOML) are converted at the boundary with
``raise ... from exc`` so callers catch ours::

    ShadowtapError
    ├── ConfigError            bad settings: names the key and the fix
    ├── EnvelopeError          a record that is not a valid envelope (goes to the DLQ)
    ├── BrokerError            the broker could not be reached or refused an operation
    │   ├── KafkaSecurityError the cluster refused our credentials or TLS (the message says which)
    │   └── DevKafkaError      the local development broker could not be set up or started
    ├── DependencyError        an installed library is a version shadowtap was not tested with
    ├── ScrubError             a record could not be scrubbed (fail closed: DLQ)
    ├── WindowError            a drill's window is no longer (fully) retained: names the oldest time
    ├── ReplayError            a delivery to a target failed
    │   ├── RetryableReplayError   may succeed later (connection refused, 503, timeout)
    │   └── PermanentReplayError   will not succeed (blocked by policy, 4xx, bad request)
    └── SideEffectBlocked      the target's guard stopped a mirrored request's side effect
"""

from __future__ import annotations

from typing import Protocol


class ShadowtapError(Exception):
    """Base of every error shadowtap raises on purpose."""


class ConfigError(ShadowtapError):
    """A setting is missing, unknown or has a bad value."""


class EnvelopeError(ShadowtapError):
    """A record could not be decoded as an envelope.

    ``reason`` is a short stable code (``not-json``, ``missing-field``, ``bad-type``,
    ``unsupported-version``, ``bad-base64``, ``bad-value``) used in DLQ headers and metrics
    labels.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class BrokerError(ShadowtapError):
    """The broker could not be reached or refused an operation."""


class KafkaSecurityError(BrokerError):
    """A wrong password, an untrusted broker certificate, a refused client certificate."""


class DevKafkaError(BrokerError):
    """The local development broker could not be fetched, started or stopped."""


class DependencyError(ShadowtapError):
    """An installed library is a version shadowtap was not tested with (names the fix)."""


class ScrubError(ShadowtapError):
    """A record could not be scrubbed; it must not reach the mirror topic."""


class WindowError(ShadowtapError):
    """A drill window that retention no longer fully covers (``--partial`` accepts it)."""


class ReplayError(ShadowtapError):
    """A delivery to a target failed.

    ``kind`` is a short stable code (``connect``, ``timeout``, ``disconnected``,
    ``protocol``) used as the result's ``error_kind``, the DLQ reason and a metrics label.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class RetryableReplayError(ReplayError):
    """A delivery failure that may succeed when tried again."""


class PermanentReplayError(ReplayError):
    """A delivery failure that will not succeed when tried again."""


class BlockedEffect(Protocol):
    """What the guard says about one side effect it stopped (shadowtap.guard.policy.Block)."""

    @property
    def effect(self) -> str: ...  # http, smtp, email, celery

    @property
    def target(self) -> str: ...

    @property
    def request_id(self) -> str: ...

    @property
    def message(self) -> str: ...


class SideEffectBlocked(ShadowtapError):
    """An outbound side effect of a mirrored request was stopped by the target's guard.

    ``effect``, ``target`` and ``request_id`` say which; the classes the guard's patches raise
    also derive from the patched library's connection error, so the app's existing error
    handling sees an unreachable service.
    """

    def __init__(self, block: BlockedEffect) -> None:
        super().__init__(block.message)
        self.effect = block.effect
        self.target = block.target
        self.request_id = block.request_id
