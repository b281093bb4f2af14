"""A drill's report files: ``drill.json``, ``drill.junit.xml`` and ``drill.html`` in one
directory (``--report DIR``; by default ``drill-report-<name>``).

The JSON holds the run's record (window, filters, target, state, figures, goals), the
plan's figures, the status mix, the error groups with samples, latency per endpoint
(target against recorded production), throughput per second against the original shape,
and the earlier runs of the same name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from shadowtap.diff.summary import GoalResult
from shadowtap.drill.html import render
from shadowtap.drill.report import DrillBook, vars_of
from shadowtap.junit import finish, goal_suite


def details(
    record: dict[str, Any],
    book: DrillBook,
    results: Sequence[GoalResult],
    earlier: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Everything the report files show, as plain JSON-able data."""
    return {
        **record,
        "passed": all(r.passed for r in results),
        "plan": book.plan.to_json(),
        "status_mix": [
            {"method": m, "family": f, "count": n} for (m, f), n in sorted(book.status_mix.items())
        ],
        "errors": [
            {"kind": g.kind, "endpoint": g.endpoint, "count": g.count, "samples": g.samples}
            for g in sorted(book.errors.values(), key=lambda g: -g.count)
        ],
        "latency": [
            {
                "endpoint": row.endpoint,
                "sides": {side: vars_of(q) for side, q in row.sides.items()},
                "ratios": row.ratios,
            }
            for row in book.latencies()
        ],
        "throughput": book.throughput(),
        "original_shape": book.original_shape(),
        "earlier": [
            {k: r.get(k) for k in ("name", "started", "state", "target", "figures", "goals")}
            for r in earlier
            if r.get("started") != record.get("started")
        ],
    }


def junit(data: dict[str, Any], results: Sequence[GoalResult]) -> str:
    root = ET.Element("testsuites", name=f"shadowtap drill {data['name']}")
    suite = ET.SubElement(root, "testsuite", name="endpoints")
    failing: dict[str, list[dict[str, Any]]] = {}
    for group in data["errors"]:
        failing.setdefault(group["endpoint"], []).append(group)
    for name in sorted(data["plan"]["endpoints"]):
        case = ET.SubElement(suite, "testcase", classname="drill", name=name)
        groups = failing.get(name)
        if groups:
            count = sum(g["count"] for g in groups)
            failure = ET.SubElement(case, "failure", message=f"{count} requests failed")
            failure.text = "\n".join(f"{g['count']} × {g['kind']}" for g in groups)
    if results:
        goal_suite(root, results)
    return finish(root)


def write_reports(
    directory: Path | None,
    record: dict[str, Any],
    book: DrillBook,
    results: Sequence[GoalResult],
    earlier: Sequence[dict[str, Any]],
) -> list[Path]:
    directory = directory or Path(f"drill-report-{record['name']}")
    directory.mkdir(parents=True, exist_ok=True)
    data = details(record, book, results, earlier)
    out = {
        "drill.json": orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS),
        "drill.junit.xml": junit(data, results).encode(),
        "drill.html": render(data).encode(),
    }
    paths = []
    for name, content in out.items():
        path = directory / name
        path.write_bytes(content)
        paths.append(path)
    return paths
