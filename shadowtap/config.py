"""Settings: one frozen dataclass per section, with its defaults, read once at start-up.

``Settings.load(path)`` reads them from defaults, a TOML file (or ``SHADOWTAP_CONFIG``),
``SHADOWTAP_<SECTION>_<KEY>`` variables and overrides, and checks every key and value
(:mod:`shadowtap.configload`): an unknown key or a bad value, a bad path pattern included,
raises ConfigError naming the key, so a typo fails at start-up instead of silently doing the
default.

Example ``shadowtap.toml``::

    [kafka]
    bootstrap = "kafka-1:9096,kafka-2:9096"
    security_protocol = "SASL_SSL"
    sasl_mechanism = "SCRAM-SHA-512"
    sasl_username = "shadowtap"
    sasl_password_env = "KAFKA_PASSWORD"    # the password itself stays in the environment

    [topics]
    partitions = 12
    mirror_retention_hours = 168

Each stage documents its own section in its module docstring.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shadowtap.configload import load
from shadowtap.errors import ConfigError
from shadowtap.rules import RequestRule, check_paths

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
# The key of capture's hashes and the scrubber's pseudonyms when none is set: public, so
# anyone can reverse them (`shadowtap doctor` fails on it).
DEVELOPMENT_HASH_KEY = "shadowtap-development-key"


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """How to reach the cluster, security included; the same for every client of every stage.

    ``security_protocol`` and the ``sasl_*``/``ssl_*`` keys are translated for librdkafka and
    aiokafka alike (shadowtap.kafka_security.Security checks them at start-up). Passwords may
    come from a variable named by ``sasl_password_env``/``ssl_key_password_env`` instead.
    ``librdkafka`` passes extra tuning properties to the librdkafka clients only, so security
    properties there are refused. ``connect_timeout_s`` bounds the start-up check.
    """

    bootstrap: str = "127.0.0.1:9092"
    client_id: str = "shadowtap"
    compression: Literal["none", "lz4", "zstd", "snappy", "gzip"] = "lz4"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str = ""
    sasl_password: str = ""
    sasl_password_env: str = ""
    ssl_ca_file: str = ""  # "": the system's CA store
    ssl_cert_file: str = ""  # client certificate (mTLS), with ssl_key_file
    ssl_key_file: str = ""
    ssl_key_password: str = ""
    ssl_key_password_env: str = ""
    ssl_check_hostname: bool = True
    connect_timeout_s: float = 15.0
    librdkafka: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """Topic names, partition counts and retention.

    ``captured``: raw records from capture, production's trust zone, kept briefly;
    ``mirror``: scrubbed records for the replayers, kept longer for DR drills; ``results``:
    one record per delivery with the target's answer; ``dlq``: records a stage could not
    decode, scrub or deliver, with the reason in their headers; ``diffs``: sampled
    mismatches written by ``shadowtap diff run`` and ``serve`` (shadowtap.diff.stage);
    ``diff_states``: each ``diff serve`` worker's counters, merged by ``diff report --run``.
    """

    captured: str = "shadowtap.captured"
    mirror: str = "shadowtap.mirror"
    results: str = "shadowtap.results"
    dlq: str = "shadowtap.dlq"
    diffs: str = "shadowtap.diffs"
    diff_states: str = "shadowtap.diff-states"  # compacted: one state per diff worker
    drills: str = "shadowtap.drills"  # compacted: one summary per drill run (shadowtap drill)
    # ``shadowtap dlq redrive``: a compacted marker per DLQ record sent back, and the topic
    # each replayer group also reads (``retry_prefix`` + group), for records redriven to it.
    redriven: str = "shadowtap.dlq.redriven"
    retry_prefix: str = "shadowtap.retry."
    partitions: int = 6
    replication_factor: int = 1
    captured_retention_hours: float = 24
    mirror_retention_hours: float = 24 * 7
    results_retention_hours: float = 24 * 3
    dlq_retention_hours: float = 24 * 14
    diffs_retention_hours: float = 24 * 7

    def retry(self, group: str) -> str:
        """The retry topic of replayer ``group``; ConfigError if the name cannot be a topic."""
        name = self.retry_prefix + group
        if not _TOPIC_NAME.fullmatch(name):
            raise ConfigError(
                f"replayer.group {group!r} gives retry topic {name!r}, which is not a valid "
                "Kafka topic name: use letters, digits, '.', '_' and '-' (at most 249)"
            )
        return name


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """Edge controls of the capture middleware and collector (shadowtap.producers)."""

    source: str = ""
    enabled: bool = True
    include_paths: tuple[str, ...] = ()
    exclude_paths: tuple[str, ...] = ()
    include_methods: tuple[str, ...] = ()
    exclude_methods: tuple[str, ...] = ()
    sample_percent: float = 100.0
    max_request_body: int = 64 * 1024
    max_response_body: int = 64 * 1024
    content_types: tuple[str, ...] = ()
    redact_headers: tuple[str, ...] = ()
    session_header: str = ""
    session_cookie: str = ""
    principal_header: str = ""
    principal_jwt_claim: str = ""
    hash_key: str = ""
    queue_max_messages: int = 100_000
    queue_max_kbytes: int = 32 * 1024
    delivery_timeout_s: float = 30.0
    flush_timeout_s: float = 2.0
    log_interval_s: float = 60.0
    collector_host: str = "127.0.0.1"  # where `shadowtap collect` listens (--host)
    collector_port: int = 8787
    collector_secret: str = ""  # set it whenever collector_host is beyond loopback
    collector_secret_header: str = "X-Shadowtap-Secret"
    collector_metrics_port: int = 0

    def __post_init__(self) -> None:
        check_paths("include_paths", self.include_paths)
        check_paths("exclude_paths", self.exclude_paths)


@dataclass(frozen=True, slots=True)
class SampleRule(RequestRule):
    """Per-route sampling: ``percent`` of matching requests, at most ``rate_per_s`` (0: no cap)."""

    percent: float = 100.0
    rate_per_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RouteRule(RequestRule):
    """Send matching requests to ``topic`` instead of the mirror topic ("" drops them)."""

    topic: str = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    """The Faust pipeline from captured to mirror (shadowtap.processors; see its app module)."""

    group: str = "shadowtap-processor"
    web_port: int = 6066
    # filter: probe paths (globs) and user-agent substrings; extra_* extend the defaults
    filter_paths: tuple[str, ...] = (
        "/health*",
        "/ready*",
        "/live*",
        "/metrics",
        "/ping",
        "/status",
    )
    filter_user_agents: tuple[str, ...] = (
        "kube-probe",
        "ELB-HealthChecker",
        "GoogleHC",
        "Prometheus",
        "Consul Health",
        "Pingdom",
        "UptimeRobot",
        "StatusCake",
        "Datadog",
        "NewRelicPinger",
        "Site24x7",
        "Blackbox Exporter",
        "HealthChecker",
    )
    extra_filter_paths: tuple[str, ...] = ()
    extra_filter_user_agents: tuple[str, ...] = ()
    # sampling
    sample_percent: float = 100.0
    sample_by: Literal["id", "session"] = "id"
    session_header: str = ""
    session_cookie: str = ""
    sample_rules: tuple[SampleRule, ...] = ()
    # dedup
    dedup_enabled: bool = True
    dedup_window_s: float = 60.0
    dedup_fields: tuple[str, ...] = ("method", "path", "query", "body")
    dedup_max_keys: int = 1_000_000
    # scrub
    scrub_mode: Literal["pseudonymize", "redact", "hash"] = "pseudonymize"
    scrub_key: str = ""
    scrub_entities: tuple[str, ...] = (
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "IBAN_CODE",
        "US_SSN",
        "IP_ADDRESS",
        "JWT",
        "API_KEY",
    )
    scrub_thresholds: dict[str, float] = field(default_factory=dict)
    scrub_field_names: tuple[str, ...] = (
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "api_key",
        "ssn",
        "card",
        "cvv",
        "cvc",
        "iban",
        "pin",
        "otp",
        "private_key",
    )
    scrub_headers: tuple[str, ...] = (
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-auth-token",
        "x-csrf-token",
        "x-xsrf-token",
    )
    scrub_skip_headers: tuple[str, ...] = (
        "content-type",
        "content-length",
        "content-encoding",
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "host",
        "date",
        "user-agent",
        "idempotency-key",
        "traceparent",
    )
    scrub_phone_regions: tuple[str, ...] = ("US", "GB", "DE", "FR")
    scrub_nlp_model: str = ""
    scrub_cache_size: int = 65_536
    scrub_processes: int = 0  # 0: scrub in the worker; N: in N processes (parallel.py)
    # routing
    routes: tuple[RouteRule, ...] = ()
    # worker
    batch_size: int = 1000
    batch_within_s: float = 0.05
    session_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        check_paths("filter_paths", self.filter_paths)
        check_paths("extra_filter_paths", self.extra_filter_paths)


@dataclass(frozen=True, slots=True)
class ReplayerSettings:
    """Replayer workers that deliver mirrored traffic to a target (shadowtap.replayers.worker)."""

    group: str = "staging"
    target: str = ""
    target_name: str = ""
    # rewrite
    path_prefix: str = ""
    host_header: Literal["target", "original"] = "target"
    remove_headers: tuple[str, ...] = ()
    set_headers: dict[str, str] = field(default_factory=dict)
    add_headers: dict[str, str] = field(default_factory=dict)
    allow: tuple[RequestRule, ...] = ()  # requests the target may receive (none: all)
    deny: tuple[RequestRule, ...] = ()  # requests it must never receive
    # credentials
    auth_header: str = "authorization"
    auth_value: str = ""
    auth_env: str = ""
    principal_key: str = "principal"
    principal_accounts: dict[str, str] = field(default_factory=dict)
    principal_default: str = ""
    # pacing
    speed: str = "max"
    rate_per_s: float = 0.0
    # delivery policy
    max_in_flight: int = 64
    max_buffered: int = 0
    timeout_s: float = 10.0
    connect_timeout_s: float = 3.0
    retries: int = 0
    retry_statuses: tuple[int, ...] = ()
    backoff_base_s: float = 0.1
    backoff_max_s: float = 5.0
    connect_retry_s: float = 60.0
    verify_tls: bool = True
    ca_file: str = ""
    transport: Literal["aiohttp", "httpx-aiohttp", "httpx"] = "aiohttp"
    http2: bool = False
    # records whose request body is not all there: "skip" them, or "send" what they have
    incomplete: Literal["skip", "send"] = "skip"
    # results, commits, shutdown
    results: bool = True
    result_body_limit: int = 64 * 1024  # capture's max_response_body: both sides kept alike
    commit_interval_s: float = 1.0
    drain_timeout_s: float = 10.0
    session_timeout_s: float = 10.0
    metrics_port: int = 0


@dataclass(frozen=True, slots=True)
class MarkingSettings:
    """Signed marking of mirrored requests, shared by replayer, guard and capture.

    See shadowtap.marking: ``key`` (or the variable named by ``key_env``) signs and verifies;
    ``previous_keys`` still verify during a key rotation; signatures sent more than
    ``max_skew_s`` away from the verifier's clock are expired.
    """

    key: str = ""
    key_env: str = ""
    previous_keys: tuple[str, ...] = ()
    max_skew_s: float = 300.0
    header: str = "X-Shadowtap-Signature"
    id_header: str = "X-Shadowtap-Id"


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """The target app's guard against side effects of mirrored requests (shadowtap.guard)."""

    allow_hosts: tuple[str, ...] = ()
    on_block: Literal["raise", "respond"] = "raise"
    respond_status: int = 200
    respond_body: str = "{}"
    respond_content_type: str = "application/json"
    on_untrusted: Literal["reject", "ordinary"] = "reject"
    # The app answers a repeated Idempotency-Key with its first answer instead of doing the
    # work again; said to a signed probe, so `shadowtap doctor` need not send a POST twice.
    honours_idempotency_key: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings; each stage reads its own section."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    processor: ProcessorSettings = field(default_factory=ProcessorSettings)
    replayer: ReplayerSettings = field(default_factory=ReplayerSettings)
    marking: MarkingSettings = field(default_factory=MarkingSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Defaults ← TOML file ← SHADOWTAP_* environment ← ``overrides``."""
        settings: Settings = load(cls, path, env=env, overrides=overrides)
        return settings

    @classmethod
    def from_django(cls) -> Settings:
        """Settings from Django's ``settings.SHADOWTAP`` (the sections and keys of the TOML
        file), over ``SHADOWTAP_*``: what the Django middleware of capture and guard read."""
        from django.conf import settings as django_settings

        return cls.load(overrides=getattr(django_settings, "SHADOWTAP", {}) or {})
