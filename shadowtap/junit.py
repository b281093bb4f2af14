"""JUnit XML pieces every report shares (diff, drill): a suite of goal results, and the
counts and declaration that finish a document. ElementTree does the escaping::

    root = ET.Element("testsuites", name="shadowtap drill")
    goal_suite(root, results)        # one case per goal result (goal, endpoint, passed, ...)
    text = finish(root)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Protocol


class GoalOutcome(Protocol):
    @property
    def goal(self) -> str: ...
    @property
    def endpoint(self) -> str: ...
    @property
    def passed(self) -> bool: ...
    @property
    def value(self) -> float | None: ...
    @property
    def limit(self) -> float: ...
    @property
    def detail(self) -> str: ...


def goal_suite(root: ET.Element, goals: Iterable[GoalOutcome]) -> ET.Element:
    suite = ET.SubElement(root, "testsuite", name="goals")
    for goal in goals:
        case = ET.SubElement(suite, "testcase", classname=goal.endpoint or "(whole run)")
        case.set("name", goal.goal)
        if not goal.passed:
            value = "nothing measured" if goal.value is None else f"{goal.value:g}"
            failure = ET.SubElement(case, "failure", message=f"{value} misses limit {goal.limit:g}")
            failure.text = goal.detail
    return suite


def finish(root: ET.Element) -> str:
    """Each suite's tests/failures/skipped counts; the document as text."""
    for suite in root.iter("testsuite"):
        cases = list(suite.iter("testcase"))
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
        suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
