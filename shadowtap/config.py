"""Settings: frozen dataclasses read once from a TOML file and ``SHADOWTAP_*`` variables.

Sources, later ones win:

1. defaults below;
2. a TOML file: ``Settings.load(path)``, or the file named by ``SHADOWTAP_CONFIG``;
3. environment variables ``SHADOWTAP_<SECTION>_<KEY>``, e.g. ``SHADOWTAP_KAFKA_BOOTSTRAP``,
   ``SHADOWTAP_CAPTURE_SAMPLE_PERCENT=10``; lists and tables take JSON
   (``SHADOWTAP_CAPTURE_EXCLUDE_PATHS='["/health*"]'``), a list of strings also takes
   ``a,b,c``. ``SHADOWTAP_BOOTSTRAP`` is short for ``SHADOWTAP_KAFKA_BOOTSTRAP``;
4. keyword arguments to ``Settings.load(overrides={"capture": {...}})``.

An unknown key or a bad value raises ConfigError naming the key, what was given and what is
expected, so a typo fails at start-up instead of silently doing the default.

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

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from shadowtap.errors import ConfigError
from shadowtap.rules import RequestRule, check_paths

ENV_PREFIX = "SHADOWTAP_"
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
# Variables that are not settings: ignored when scanning for SHADOWTAP_<SECTION>_<KEY>.
_NON_SETTING_ENV = frozenset(
    {"SHADOWTAP_CONFIG", "SHADOWTAP_BOOTSTRAP", "SHADOWTAP_CACHE_DIR", "SHADOWTAP_DEVKAFKA"}
)


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """How to reach the cluster, security included; the same for every client of every stage.

    ``security_protocol`` and the ``sasl_*``/``ssl_*`` keys are translated for librdkafka and
    aiokafka alike (shadowtap.kafka.Security checks them at start-up). Passwords may come
    from a variable named by ``sasl_password_env``/``ssl_key_password_env`` instead.
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
    """Topic names, partition counts and retention (see DESIGN.md, "Topics")."""

    captured: str = "shadowtap.captured"
    mirror: str = "shadowtap.mirror"
    results: str = "shadowtap.results"
    dlq: str = "shadowtap.dlq"
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
    collector_secret: str = ""
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
    result_body_limit: int = 4096
    commit_interval_s: float = 1.0
    drain_timeout_s: float = 10.0
    session_timeout_s: float = 10.0
    metrics_port: int = 0


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings; each stage reads its own section."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    processor: ProcessorSettings = field(default_factory=ProcessorSettings)
    replayer: ReplayerSettings = field(default_factory=ReplayerSettings)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Defaults ← TOML file ← SHADOWTAP_* environment ← ``overrides``."""
        environ = os.environ if env is None else env
        data: dict[str, Any] = {}
        path = path or environ.get("SHADOWTAP_CONFIG")
        if path:
            data = _read_toml(Path(path))
        _merge(data, _from_env(cls, environ))
        if overrides:
            _merge(
                data, {k: dict(v) if isinstance(v, Mapping) else v for k, v in overrides.items()}
            )
        settings: Settings = build(cls, data)
        return settings


def build(cls: type[Any], data: Mapping[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, checking every key and value."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    section = f" in [{where.rstrip('.')}]" if where else ""
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown setting '{where}{unknown[0]}'; known keys{section}: "
            f"{', '.join(sorted(names))}"
        )
    kwargs = {name: _coerce(hints[name], value, f"{where}{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid settings{section}: {exc}") from exc


class _EnvText(str):
    """A value from an environment variable: text that may be parsed into the wanted type.

    Values from TOML are already typed and are checked, never parsed, so that
    ``enabled = "yes"`` in a file is an error rather than a guess.
    """

    __slots__ = ()


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Check ``value`` against type ``hint``; environment text is parsed first."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, _EnvText):
            value = _parse_json(value, key, "a table")
        if not isinstance(value, Mapping):
            _bad(key, value, "a table")
        return build(hint, value, f"{key}.")
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is Literal:
        if value not in args:
            _bad(key, value, "one of " + ", ".join(repr(a) for a in args))
        return value
    if origin is tuple:
        if isinstance(value, _EnvText):
            value = _parse_list(value, key)
        if not isinstance(value, list | tuple):
            _bad(key, value, "a list")
        return tuple(_coerce(args[0], item, f"{key}[{i}]") for i, item in enumerate(value))
    if origin is dict:
        if isinstance(value, _EnvText):
            value = _parse_json(value, key, "a table")
        if not isinstance(value, Mapping):
            _bad(key, value, "a table")
        return {str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, _EnvText) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        if type(value) is not bool:
            _bad(key, value, "true or false")
        return value
    if hint is int:
        if isinstance(value, _EnvText):
            value = _parse_number(value, key, int)
        if type(value) is not int:
            _bad(key, value, "an integer")
        return value
    if hint is float:
        if isinstance(value, _EnvText):
            value = _parse_number(value, key, float)
        if type(value) not in (int, float):
            _bad(key, value, "a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            _bad(key, value, "a string")
        return str(value)
    if hint is Any:
        return value
    raise ConfigError(f"setting '{key}' has a type shadowtap cannot read: {hint!r}")


_BOOLS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _parse_number(text: str, key: str, kind: type) -> Any:
    try:
        return kind(text.replace("_", ""))
    except ValueError:
        _bad(key, text, "an integer" if kind is int else "a number")


def _parse_list(text: str, key: str) -> Any:
    text = text.strip()
    if text.startswith("["):
        return _parse_json(text, key, "a list")
    return [item.strip() for item in text.split(",") if item.strip()]


def _parse_json(text: Any, key: str, expected: str) -> Any:
    if not isinstance(text, str):
        _bad(key, text, expected)
    try:
        return orjson.loads(str(text))
    except orjson.JSONDecodeError:
        _bad(key, text, f"{expected} written as JSON")


def _bad(key: str, value: Any, expected: str) -> typing.NoReturn:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise ConfigError(f"setting '{key}' = {shown} is invalid: expected {expected}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"config file {path} does not exist (set by argument or SHADOWTAP_CONFIG)"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _from_env(cls: type[Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Map SHADOWTAP_<SECTION>_<KEY> variables onto nested keys; unknown ones fail."""
    sections = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, dict[str, Any]] = {}
    if environ.get("SHADOWTAP_BOOTSTRAP"):
        out.setdefault("kafka", {})["bootstrap"] = _EnvText(environ["SHADOWTAP_BOOTSTRAP"])
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NON_SETTING_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(
                f"environment variable {name} is not a shadowtap setting: expected "
                "SHADOWTAP_<SECTION>_<KEY> with SECTION one of "
                + ", ".join(s.upper() for s in sections)
            )
        key = rest[len(section) + 1 :]
        out.setdefault(section, {})[key] = _EnvText(value)
    return out


def to_env(section: str, value: Any) -> dict[str, str]:
    """``SHADOWTAP_<SECTION>_<KEY>`` variables for the fields of ``value`` (a section's
    dataclass) that differ from their defaults: what a child process needs for
    ``Settings.load`` to give it the same section."""
    default = type(value)()
    out: dict[str, str] = {}
    for f in dataclasses.fields(value):
        current = getattr(value, f.name)
        if current is None or current == getattr(default, f.name):
            continue
        if isinstance(current, bool):
            text = "true" if current else "false"
        elif isinstance(current, str | int | float):
            text = str(current)
        else:
            text = orjson.dumps(current).decode()
        out[f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}"] = text
    return out


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
