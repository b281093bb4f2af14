"""The two checks that stop a replay before it sends anything, and how findings are shown.

Replaying into production sends every request a second time (a second order, e-mail,
charge); signing with the published development key lets anyone mark a request as mirrored
on a target that is not on this machine. ``shadowtap replay`` and ``shadowtap drill`` run
these two at start-up and refuse to start when one fails; ``shadowtap doctor`` runs them
with the rest of its checklist (shadowtap.doctor)::

    if not start_allowed(settings, target, console, allow_production=args.allow_production_target):
        return 1                                     # it showed what failed, with the fix

    findings = critical_findings(settings, target)   # reads the mirror topic's recent records
    show(findings, console)                          # pass / warn / fail, with the fix

- ``production-target``: the target is where recorded production requests were sent
  (shadowtap.production: hosts and ports as the records carry them, resolved addresses for a
  target off loopback). ``allow_production=True`` (``--allow-production-target``) turns the
  refusal into a warning that names the risk;
- ``marking-key``: ``[marking]`` resolves to the development key while the target is not a
  loopback address (on one machine it only warns).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from shadowtap.config import Settings
from shadowtap.envelope import Envelope
from shadowtap.errors import BrokerError, ConfigError
from shadowtap.marking import is_development_key, resolve_key
from shadowtap.production import (
    Endpoint,
    Resolver,
    endpoint_of,
    is_loopback,
    production_endpoints,
    production_match,
    recent_records,
)

ALLOW_PRODUCTION_FLAG = "--allow-production-target"


class Status(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of a checklist: which check, what it found, and what to do about it."""

    check: str
    status: Status
    found: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items()}


def failures(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.status is Status.FAIL]


def critical_findings(
    settings: Settings,
    target: str,
    *,
    records: Iterable[Envelope] | None = None,
    unread: str = "",
    allow_production: bool = False,
    resolve: Resolver | None = None,
) -> list[Finding]:
    """The production-target and marking-key checks for ``target`` (a URL).

    ``records`` are where production is learned from; by default the recent records of
    ``topics.mirror`` (the traffic a replayer sends). ``unread``: why the caller has none.
    """
    topic = settings.topics.mirror
    if records is None:
        try:
            seen = production_endpoints(recent_records(settings.kafka, topic))
        except BrokerError as exc:
            seen, unread = set(), str(exc)
    else:
        seen = production_endpoints(records)
    return [
        production_target(
            target, seen, topic, allow=allow_production, unread=unread, resolve=resolve
        ),
        marking_key(settings, target),
    ]


def production_target(
    target: str,
    seen: set[Endpoint],
    topic: str,
    *,
    allow: bool = False,
    unread: str = "",
    resolve: Resolver | None = None,
) -> Finding:
    check = "production-target"
    reason = production_match(target, seen, resolve)
    if reason is not None:
        found = f"{target} is production: {reason}"
        if allow:
            return Finding(
                check,
                Status.WARN,
                f"{found}; allowed by {ALLOW_PRODUCTION_FLAG}: every replayed request reaches "
                "production a second time (orders, e-mails, payments)",
            )
        return Finding(
            check,
            Status.FAIL,
            found,
            "replay to a staging, shadow or DR address; only where sending production its own "
            f"traffic again is intended, pass {ALLOW_PRODUCTION_FLAG}",
        )
    if not seen:
        why = unread or f"{topic} has no records yet"
        return Finding(
            check,
            Status.WARN,
            f"nothing says where production is ({why})",
            "run `shadowtap doctor --target URL` again once mirrored traffic flows",
        )
    hosts = ", ".join(str(e) for e in sorted(seen)[:5]) + (" …" if len(seen) > 5 else "")
    return Finding(check, Status.PASS, f"{target} is none of production's {hosts}")


def marking_key(settings: Settings, target: str) -> Finding:
    check = "marking-key"
    fix = "set marking.key_env (or marking.key) to a secret the replayer and the target share"
    try:
        key = resolve_key(settings.marking)
    except ConfigError as exc:
        return Finding(check, Status.FAIL, str(exc), fix)
    if not is_development_key(key):
        return Finding(check, Status.PASS, "mirrored requests are signed with a key of your own")
    endpoint = endpoint_of(target)
    local = endpoint is not None and is_loopback(endpoint.host)
    found = "the marking key is shadowtap's published development key: anyone can sign"
    if local:
        return Finding(check, Status.WARN, f"{found} (fine on this machine only)", fix)
    return Finding(check, Status.FAIL, f"{found}, and {target} is not on this machine", fix)


def start_allowed(
    settings: Settings,
    target: str,
    console: Any,
    *,
    allow_production: bool = False,
    records: Iterable[Envelope] | None = None,
) -> bool:
    """The critical checks as a command starts: what is not a pass is shown; False when one
    failed (the command must not start)."""
    findings = critical_findings(
        settings, target, records=records, allow_production=allow_production
    )
    worth_saying = [f for f in findings if f.status is not Status.PASS]
    if worth_saying:
        show(worth_saying, console)
    if failures(findings):
        console.print(f"refused to replay to {target}: a critical check failed (above)")
        return False
    return True


_STYLE = {Status.PASS: "[green]pass[/green]", Status.WARN: "[yellow]warn[/yellow]"}


def show(findings: Sequence[Finding], console: Any) -> None:
    """The findings as a table on a terminal; as one line each elsewhere (a log file, the
    plain stand-in of a capture-only install), so no line is folded."""
    if not getattr(console, "is_terminal", False):
        for f in findings:
            line = f"{f.status.value.upper():4}  {f.check}: {f.found}"
            console.print(_escape(line + (f" — fix: {f.fix}" if f.fix else "")), soft_wrap=True)
        return
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("", "check", "found", "fix"):
        table.add_column(column, overflow="fold")
    for f in findings:
        status = _STYLE.get(f.status, "[bold red]FAIL[/bold red]")
        table.add_row(status, f.check, _escape(f.found), _escape(f.fix))
    console.print(table)


def _escape(text: str) -> str:
    try:
        from rich.markup import escape
    except ImportError:
        return text
    return escape(text)


def as_json(findings: Sequence[Finding]) -> dict[str, Any]:
    """What ``--json`` prints: the findings, and whether any failed."""
    return {"passed": not failures(findings), "findings": [f.as_dict() for f in findings]}
