"""The demo's verdict: what shadowtap promises, checked on what the topics held.

``build_report`` checks that every request was captured, no planted PII value reached the
mirror topic (searched raw and inside base64 bodies), health checks and client retries were
dropped, every mirrored request was replayed and nothing was dead-lettered, staging's guard
trusted every replayed request and blocked the e-mail of every order staging accepted; it
lists where staging answered with another status than production. ``write_report`` writes it as JSON
and as a self-contained HTML page, every value escaped on its way into the markup by one
function (``escape``); ``print_summary`` says it on the terminal.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from shadowtap.demo.traffic import Tally, Traffic
from shadowtap.envelope import Envelope


def _leaks(planted: list[str], raw_records: list[bytes]) -> list[str]:
    """Planted values found in mirror records, searched raw and inside base64 bodies."""
    haystacks: list[bytes] = []
    for raw in raw_records:
        haystacks.append(raw)
        record = orjson.loads(raw)
        for body in (record.get("body"), (record.get("response") or {}).get("body")):
            if body:
                haystacks.append(base64.b64decode(body))
    found = []
    for value in set(planted):
        needle = value.encode()
        if any(needle in hay for hay in haystacks):
            found.append(value)
    return sorted(found)


def build_report(traffic: Traffic, tally: Tally, guard: dict[str, int]) -> dict[str, Any]:
    """The verdict; ``guard`` is what staging's guard counted (traffic.guard_counts)."""
    mirrored_kinds = Counter(_kind(env) for env in tally.mirrored.values())
    replayed = [rid for rid in tally.mirrored if rid in tally.results]
    reached_staging = [rid for rid in replayed if tally.results[rid].get("status") is not None]
    orders_accepted = sum(
        1
        for rid in reached_staging
        if _kind(tally.mirrored[rid]) == "order" and tally.results[rid].get("status") == 201
    )
    diffs = []
    for rid in replayed:
        env, result = tally.mirrored[rid], tally.results[rid]
        prod_status = env.response.status if env.response else None
        shadow_status = result.get("status")
        if prod_status != shadow_status:
            diffs.append(
                {
                    "id": rid,
                    "request": f"{env.method} {env.target}",
                    "production": prod_status,
                    "staging": shadow_status,
                }
            )
    leaks = _leaks(traffic.planted, tally.mirrored_raw)
    checks = {
        "every request captured": len(tally.captured) >= traffic.sent,
        "no planted PII in the mirror topic": not leaks,
        "health checks filtered": mirrored_kinds["health"] == 0,
        "client retries deduplicated": mirrored_kinds["order"] <= traffic.by_kind["order"],
        "every mirrored request replayed": len(replayed) == len(tally.mirrored)
        and bool(tally.mirrored),
        "nothing in the dead-letter topic": tally.dlq == 0,
        "staging's guard trusted every replayed request": guard["verified"] == len(reached_staging),
        "no order e-mail left staging (blocked by the guard)": guard["emails_blocked"]
        == orders_accepted,
    }
    return {
        "passed": all(checks.values()),
        "checks": checks,
        "sent": traffic.sent,
        "sent_by_kind": dict(traffic.by_kind),
        "production_statuses": {str(k): v for k, v in sorted(traffic.statuses.items())},
        "captured": len(tally.captured),
        "mirrored": len(tally.mirrored),
        "mirrored_by_kind": dict(mirrored_kinds),
        "replayed": len(replayed),
        "dead_lettered": tally.dlq,
        "side_effects_blocked": {"order_emails": guard["emails_blocked"]},
        "planted_pii_values": len(set(traffic.planted)),
        "leaked_pii_values": leaks,
        "status_differences": diffs[:50],
        "status_difference_count": len(diffs),
        "sample_mirrored_request": _sample(tally),
    }


def _kind(env: Envelope) -> str:
    if env.path == "/health":
        return "health"
    if env.path == "/api/login":
        return "login"
    if env.path == "/api/orders":
        return "order"
    return "browse"


def _sample(tally: Tally) -> dict[str, Any] | None:
    for env in tally.mirrored.values():
        if env.path == "/api/orders" and env.body:
            return {
                "request": f"{env.method} {env.target}",
                "headers": env.headers,
                "body": env.body.decode("utf-8", "replace"),
                "meta": env.meta,
            }
    return None


def write_report(report: dict[str, Any], report_dir: Path) -> tuple[Path, Path]:
    """``shadowtap-demo-report.json`` and ``.html`` in ``report_dir``; return their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / "shadowtap-demo-report.json"
    html_path = report_dir / "shadowtap-demo-report.html"
    json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    html_path.write_text(render_html(report))
    return json_path, html_path


class Html(str):
    """Markup built from escaped parts: ``escape`` passes it on as it is."""

    __slots__ = ()


def escape(value: object) -> Html:
    """The one way a value gets into the page: as text, unless it is already ``Html``."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value)))


def render_html(report: dict[str, Any]) -> str:
    verdict = "all checks passed" if report["passed"] else "checks failed"
    checks = "".join(_row(name, _verdict(ok)) for name, ok in report["checks"].items())
    counts = "".join(
        _row(k, report[k]) for k in ("sent", "captured", "mirrored", "replayed", "dead_lettered")
    ) + _row("order e-mails blocked on staging", report["side_effects_blocked"]["order_emails"])
    diffs = "".join(
        _row(d["request"], d["production"], d["staging"]) for d in report["status_differences"]
    )
    sample = orjson.dumps(report["sample_mirrored_request"], option=orjson.OPT_INDENT_2).decode()
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>shadowtap demo report</title><style>{_CSS}</style></head><body>
<h1>shadowtap demo — {escape(verdict)}</h1>
<h2>Checks</h2><table>{checks}</table>
<h2>Counts</h2><table>{counts}</table>
<h2>Staging answered differently ({escape(report["status_difference_count"])})</h2>
<table><tr><th>request</th><th>production</th><th>staging</th></tr>{diffs}</table>
<h2>A mirrored order, as staging received it</h2><pre>{escape(sample)}</pre>
</body></html>
"""


_CSS = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.3rem .7rem;text-align:left}
.ok{color:#16794c;font-weight:bold}.bad{color:#b3261e;font-weight:bold}
pre{background:#f5f5f5;padding:1rem;overflow:auto}"""


def _verdict(ok: bool) -> Html:
    return Html(f"<span class={'ok' if ok else 'bad'}>{escape('pass' if ok else 'FAIL')}</span>")


def _row(*cells: object) -> Html:
    return Html("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>")


def print_summary(out: Any, report: dict[str, Any], paths: tuple[Path, Path]) -> None:
    for name, ok in report["checks"].items():
        out.print(f"{'[green]✓' if ok else '[red]✗'}[/] {name}")
    out.print(
        f"sent {report['sent']} · captured {report['captured']} · mirrored {report['mirrored']} · "
        f"replayed {report['replayed']} · status differences {report['status_difference_count']}"
        f" · order e-mails blocked on staging {report['side_effects_blocked']['order_emails']}"
    )
    out.print(f"report: {paths[0]} and {paths[1]}")
