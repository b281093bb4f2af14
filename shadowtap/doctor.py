"""``shadowtap doctor [--target URL]``: a preflight checklist before mirroring to a target.

Each line is pass, warn or fail, with the fix; ``shadowtap doctor`` exits 1 when a line
fails, 0 otherwise (warnings included), 2 on an unusable setting or flag. It reads the same
settings as the stages, so run it where the replayer runs, with its configuration:

- ``production-target``, ``marking-key`` — the critical checks replay and drill run at
  start-up too (shadowtap.preflight);
- ``target-answers``, ``guard`` — one signed probe (``GET`` of the target's base path, signed
  as the replayer signs, so its side effects are blocked where a guard runs): the target must
  answer, and ``X-Shadowtap-Guard: mirrored`` on the answer shows the guard is installed and
  trusts the replayer's key. No guard is a warning (a benchmark against plain nginx is
  fine); a guard that rejects the probe fails (the keys differ, or a clock is off);
- ``scrub-key``, ``capture-hash-key`` — set, and not the development key anyone can use to
  reverse pseudonyms and principal hashes;
- ``collector-secret`` — set when ``capture.collector_host`` is beyond loopback;
- ``topics`` — every topic exists with the configured partitions and retention;
- ``idempotency`` — warns when recent records hold POST or PATCH requests the replayer would
  send and the target does not say it honours ``Idempotency-Key``. Saying so is the app's
  word (``guard.honours_idempotency_key``, shown on the probe's answer): finding out by
  sending one non-idempotent request twice would write into the target twice when it
  does not.

The recent records are the last ones of ``topics.mirror`` (what a replayer sends).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

from shadowtap.config import DEVELOPMENT_HASH_KEY, Settings
from shadowtap.envelope import Envelope
from shadowtap.errors import BrokerError, ConfigError
from shadowtap.kafka import describe_topics, topic_specs
from shadowtap.kafka_check import wait_for_broker
from shadowtap.preflight import Finding, Status, critical_findings
from shadowtap.production import is_loopback, recent_records

NON_IDEMPOTENT = frozenset({"POST", "PATCH"})
GUARD_HEADER = "x-shadowtap-guard"
HONOURED = "idempotency-key=honoured"
_HOUR_MS = 3_600_000


def checklist(settings: Settings, target: str) -> list[Finding]:
    """Every check, in the order a person would fix them; ``target`` "" skips the target's."""
    kafka = _kafka(settings)
    records: list[Envelope] = []
    unread = "" if kafka.status is Status.PASS else "Kafka did not answer"
    if not unread:
        try:
            records = list(recent_records(settings.kafka, settings.topics.mirror))
        except BrokerError as exc:
            unread = str(exc)
    findings = [kafka]
    probe_answer: dict[str, str] | None = None
    if target:
        findings += critical_findings(settings, target, records=records, unread=unread)
        answered, guard, probe_answer = probe(settings, target)
        findings += [answered, guard]
    else:
        findings.append(
            Finding(
                "target",
                Status.WARN,
                "no target given: production-target, marking-key, guard and idempotency "
                "were not checked",
                "pass --target URL (or set replayer.target)",
            )
        )
    findings += [scrub_key(settings), capture_hash_key(settings), collector_secret(settings)]
    if kafka.status is Status.PASS:
        findings.append(topics(settings))
    else:
        findings.append(Finding("topics", Status.WARN, "not checked: Kafka did not answer"))
    if target:
        findings.append(idempotency(_with_target(settings, target), records, probe_answer, unread))
    return findings


def _kafka(settings: Settings) -> Finding:
    try:
        brokers = wait_for_broker(settings.kafka, timeout=min(settings.kafka.connect_timeout_s, 10))
    except BrokerError as exc:
        return Finding(
            "kafka", Status.FAIL, str(exc), "check kafka.bootstrap and the [kafka] security"
        )
    return Finding("kafka", Status.PASS, f"{settings.kafka.bootstrap} answers ({brokers} brokers)")


def probe(
    settings: Settings, target: str, timeout_s: float = 5.0, path: str = "/"
) -> tuple[Finding, Finding, dict[str, str] | None]:
    """One signed GET of the target's ``path`` (its base path by default; a drill's
    ``--health`` path): does it answer, and does a guard say so?"""
    import httpx

    from shadowtap.replayers.policy import Policy
    from shadowtap.replayers.rewrite import Rewriter

    replayer = _with_target(settings, target)
    try:
        policy = Policy.from_settings(replayer.replayer, replayer.marking)
    except ConfigError as exc:  # said by marking-key already
        policy = Policy()
        unsigned = f" (sent unsigned: {exc})"
    else:
        unsigned = ""
    out = policy.marked(
        Rewriter(replayer.replayer).rewrite(Envelope("GET", path, id=f"doctor-{uuid.uuid4()}"))
    )
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            response = client.request(out.method, out.url, headers=out.headers)
    except httpx.HTTPError as exc:
        answered = Finding(
            "target-answers",
            Status.FAIL,
            f"{out.url} did not answer: {type(exc).__name__}: {exc}",
            "start the target, or check the URL and that this host can reach it",
        )
        return (
            answered,
            Finding("guard", Status.WARN, "not probed: the target did not answer"),
            None,
        )
    ms = (time.perf_counter() - started) * 1000
    answered = Finding(
        "target-answers",
        Status.PASS,
        f"GET {out.url} answered {response.status_code} in {ms:.0f} ms",
    )
    headers = {k.lower(): v for k, v in response.headers.items()}
    return answered, _guard(headers.get(GUARD_HEADER, ""), unsigned), headers


def _guard(said: str, unsigned: str) -> Finding:
    if said.startswith("mirrored"):
        return Finding("guard", Status.PASS, f"the guard trusted the signed probe ({said})")
    if said.startswith("rejected"):
        return Finding(
            "guard",
            Status.FAIL,
            f"the guard rejected the signed probe ({said}){unsigned}: every mirrored request "
            "would get 403",
            "give the replayer and the target the same [marking] key (key_env); check both "
            "clocks (marking.max_skew_s)",
        )
    return Finding(
        "guard",
        Status.WARN,
        f"no guard answered the signed probe{unsigned}: the target's e-mails, payments and "
        "webhooks fire for mirrored requests",
        "install shadowtap.guard in the target app (README, Safe mirroring); fine for a "
        "benchmark against a plain server",
    )


def _with_target(settings: Settings, target: str) -> Settings:
    from dataclasses import replace

    return replace(settings, replayer=replace(settings.replayer, target=target))


def _key_finding(check: str, key: str, setting: str, what: str) -> Finding:
    if key and key != DEVELOPMENT_HASH_KEY:
        return Finding(check, Status.PASS, f"{setting} is set")
    return Finding(
        check,
        Status.FAIL,
        f"{setting} is {'the development key' if key else 'not set'}: {what} can be "
        "reversed by anyone who has shadowtap",
        f"set {setting} (SHADOWTAP_{setting.upper().replace('.', '_')}) to a secret of your own",
    )


def scrub_key(settings: Settings) -> Finding:
    return _key_finding(
        "scrub-key", settings.processor.scrub_key, "processor.scrub_key", "pseudonyms of PII"
    )


def capture_hash_key(settings: Settings) -> Finding:
    return _key_finding(
        "capture-hash-key",
        settings.capture.hash_key,
        "capture.hash_key",
        "hashed sessions and principals",
    )


def collector_secret(settings: Settings) -> Finding:
    capture = settings.capture
    where = f"{capture.collector_host}:{capture.collector_port}"
    if capture.collector_secret:
        return Finding("collector-secret", Status.PASS, f"the collector ({where}) requires it")
    if is_loopback(capture.collector_host):
        return Finding(
            "collector-secret", Status.PASS, f"the collector listens on loopback only ({where})"
        )
    return Finding(
        "collector-secret",
        Status.FAIL,
        f"the collector listens on {where} with no secret: anyone who reaches it can write "
        "requests into the captured topic",
        "set capture.collector_secret and send it from the proxy's mirror "
        "(collector_secret_header)",
    )


def topics(settings: Settings) -> Finding:
    problems: list[str] = []
    worst = Status.PASS
    try:
        found = describe_topics(settings)
    except BrokerError as exc:
        return Finding("topics", Status.FAIL, str(exc), "check the [kafka] settings")
    for spec, info in zip(topic_specs(settings.topics), found, strict=True):
        if info is None:
            problems.append(f"{spec.name} is missing")
            worst = Status.FAIL
            continue
        if info.partitions != spec.partitions:
            problems.append(f"{spec.name} has {info.partitions} partitions, not {spec.partitions}")
        if info.retention_ms is not None and info.retention_ms != spec.retention_ms:
            problems.append(
                f"{spec.name} keeps records {info.retention_ms / _HOUR_MS:g} h, "
                f"not {spec.retention_ms / _HOUR_MS:g} h"
            )
        if problems and worst is Status.PASS:
            worst = Status.WARN
    if not problems:
        names = ", ".join(spec.name for spec in topic_specs(settings.topics))
        return Finding("topics", Status.PASS, f"as configured: {names}")
    fix = (
        "shadowtap topics create"
        if worst is Status.FAIL
        else "alter the topics (kafka-configs, kafka-topics --alter) or the [topics] settings"
    )
    return Finding("topics", worst, "; ".join(problems), fix)


def idempotency(
    settings: Settings,
    records: Sequence[Envelope],
    probe_answer: dict[str, str] | None,
    unread: str = "",
) -> Finding:
    from shadowtap.replayers.rewrite import Rewriter

    if unread:
        return Finding("idempotency", Status.WARN, f"not checked: no records ({unread})")
    blocked: Callable[[Envelope], str | None] = Rewriter(settings.replayer).blocked
    sent = sorted(
        {e.method.upper() for e in records if e.method.upper() in NON_IDEMPOTENT and not blocked(e)}
    )
    if not sent:
        return Finding(
            "idempotency", Status.PASS, "no POST or PATCH among the recent records it would send"
        )
    methods = " and ".join(sent)
    if probe_answer is not None and HONOURED in probe_answer.get(GUARD_HEADER, ""):
        return Finding(
            "idempotency",
            Status.PASS,
            f"{methods} are replayed; the target honours Idempotency-Key",
        )
    return Finding(
        "idempotency",
        Status.WARN,
        f"{methods} requests are replayed and the target does not say it honours "
        "Idempotency-Key: a redelivery (a retry, a crash) does the work twice",
        "answer a repeated Idempotency-Key with the first answer and set "
        "guard.honours_idempotency_key = true; or leave them out (replayer.deny)",
    )
