"""The diff run as JUnit XML, for CI systems that show test results.

One test suite per view, one test case per endpoint and field: a case fails when its field
is flagged (a regression in three-way mode, any real difference in a two-way view) and is
skipped when the field is only noise, noise-class or accepted. Goals form their own suite,
one case per goal result. ElementTree does the escaping.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from shadowtap.diff.summary import FLAGGED, FieldSummary, Summary
from shadowtap.junit import finish, goal_suite


def render(summary: Summary) -> str:
    root = ET.Element("testsuites", name="shadowtap diff")
    for view in summary.views:
        suite = ET.SubElement(root, "testsuite", name=view.label)
        for ep in view.endpoints:
            for f in ep.fields:
                _field_case(suite, ep.endpoint, f)
    if summary.goals:
        goal_suite(root, summary.goals)
    return finish(root)


def _field_case(suite: ET.Element, endpoint: str, f: FieldSummary) -> None:
    case = ET.SubElement(suite, "testcase", classname=endpoint, name=f.field)
    detail = f"{f.verdict}: differs in {f.differences} records"
    if f.baseline_differences:
        detail += f", baselines differ in {f.baseline_differences}"
    if f.verdict in FLAGGED:
        failure = ET.SubElement(case, "failure", message=detail, type=f.verdict)
        failure.text = "\n".join(f"{s.id} {s.where}: {s.a!r} -> {s.b!r}" for s in f.samples)
    else:
        ET.SubElement(case, "skipped", message=detail)


def write_junit(summary: Summary, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render(summary), encoding="utf-8")
    return path
