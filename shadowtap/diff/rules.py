"""The rules file: what a difference means for this service, versioned, read by every run.

``shadowtap diff noise add`` and ``shadowtap diff accept`` append to it (shadowtap.diff.triage)
and keep everything else in it as written. Every key, with its default::

    version = 1                      # required: the rules format
    allow_new_fields = false         # true: a key only the second side has is no difference
    templates = ["/users/{id}"]      # route templates, tried before learned ones
    learn_templates = true           # template other paths from their id-like segments
    goals = ["mismatch<=0.5%", "GET /users/{id}: p99<=1.5x"]   # see shadowtap.diff.goals

    [headers]
    ignore = ["x-request-id"]        # besides Date, Server, Content-Length and hop-by-hop
    only = []                        # when given, compare only these headers
    compare_defaults = false         # true: compare Date, Server... too

    [thresholds]                     # three-way mode, per endpoint and field (Diffy's)
    relative = 20.0                  # |raw - noise| / (raw + noise), in percent
    absolute = 0.03                  # |raw - noise| / requests, in percent

    [[noise]]                        # in file order; the first that selects a place wins
    path = "$..updated_at"           # a JSONPath into the body (shadowtap.diff.jsonpath) ...
    header = ""                      # ... or a header name (glob: "x-trace-*")
    comparator = "timestamp"         # ignore | numeric | timestamp | type | unordered |
                                     # regex | allow-new            (default: ignore)
    seconds = 5.0                    # timestamp: equal when at most this far apart
    tolerance = 0.0                  # numeric: equal when |a - b| <= tolerance ...
    relative = 0.0                   # ... or <= relative * max(|a|, |b|)
    key = ""                         # unordered: match elements on this member
    pattern = ""                     # regex: equal when both values match it whole
    endpoint = ""                    # "GET /users/{id}", "/users/{id}" (any method), "" all
    target = ""                      # a target name, "" for every target
    note = ""

    [[accept]]                       # a known, intended difference: shown, never gating
    endpoint = "GET /users/{id}"
    field = "$.name"                 # a field as the report names it
    kind = ""                        # only this kind of difference (type, added, ...)
    target = ""
    note = "v2 splits the name on purpose"

A bad rule fails at start-up with a ConfigError naming it and the fix.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shadowtap.configload import build
from shadowtap.diff.endpoints import compile_template
from shadowtap.diff.goals import parse_goal
from shadowtap.diff.jsonpath import JsonPath
from shadowtap.diff.model import Kind
from shadowtap.errors import ConfigError

VERSION = 1
Comparator = Literal["ignore", "numeric", "timestamp", "type", "unordered", "regex", "allow-new"]
_HEADER_COMPARATORS = ("ignore", "numeric", "timestamp", "regex")


@dataclass(frozen=True, slots=True)
class NoiseRule:
    """Where differences are noise, and how values there compare."""

    path: str = ""
    header: str = ""
    comparator: Comparator = "ignore"
    seconds: float = 0.0
    tolerance: float = 0.0
    relative: float = 0.0
    key: str = ""
    pattern: str = ""
    endpoint: str = ""
    target: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A difference the team expects (an intended change): reported, never a regression."""

    endpoint: str = ""
    field: str = ""
    kind: str = ""
    target: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class HeaderRules:
    ignore: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    compare_defaults: bool = False


@dataclass(frozen=True, slots=True)
class Thresholds:
    relative: float = 20.0
    absolute: float = 0.03


@dataclass(frozen=True, slots=True)
class Rules:
    """The whole rules file; ``Rules()`` is the empty file of the current version."""

    version: int = VERSION
    allow_new_fields: bool = False
    templates: tuple[str, ...] = ()
    learn_templates: bool = True
    goals: tuple[str, ...] = ()
    headers: HeaderRules = field(default_factory=HeaderRules)
    thresholds: Thresholds = field(default_factory=Thresholds)
    noise: tuple[NoiseRule, ...] = ()
    accept: tuple[Accepted, ...] = ()


def load_rules(path: str | Path) -> Rules:
    """Read and check a rules file; ConfigError says what is wrong and where."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"rules file {path} does not exist") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"rules file {path} is not valid TOML: {exc}") from exc
    return parse_rules(data, str(path))


def parse_rules(data: Mapping[str, Any], source: str = "rules") -> Rules:
    """Build and check Rules from a decoded TOML document."""
    version = data.get("version")
    if version is None:
        raise ConfigError(f"{source}: no 'version'; put `version = {VERSION}` at the top")
    if version != VERSION:
        raise ConfigError(
            f"{source}: version {version!r} is not supported; this shadowtap reads "
            f"version = {VERSION}"
        )
    try:
        rules: Rules = build(Rules, data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    _check(rules, source)
    return rules


def _check(rules: Rules, source: str) -> None:
    def fail(key: str, why: str) -> None:
        raise ConfigError(f"{source}: {key}: {why}")

    for text in rules.templates:
        try:
            compile_template(text)
        except ValueError as exc:
            fail("templates", str(exc))
    for i, goal in enumerate(rules.goals):
        try:
            parse_goal(goal)
        except ValueError as exc:
            fail(f"goals[{i}]", str(exc))
    if rules.thresholds.relative < 0 or rules.thresholds.absolute < 0:
        fail("thresholds", "thresholds are percentages and cannot be negative")
    for i, rule in enumerate(rules.noise):
        why = _rule_problem(rule)
        if why:
            fail(f"noise[{i}]", why)
    kinds = {k.value for k in Kind}
    for i, accepted in enumerate(rules.accept):
        if not accepted.endpoint or not accepted.field:
            fail(f"accept[{i}]", "give 'endpoint' and 'field' as the report names them")
        if accepted.kind and accepted.kind not in kinds:
            fail(f"accept[{i}].kind", f"{accepted.kind!r} is not one of {', '.join(sorted(kinds))}")
        why = endpoint_problem(accepted.endpoint)
        if why:
            fail(f"accept[{i}].endpoint", why)


def _rule_problem(rule: NoiseRule) -> str:
    """What is wrong with a noise rule, or "" when nothing is."""
    if bool(rule.path) == bool(rule.header):
        return "give either 'path' (a JSONPath into the body) or 'header' (a header name)"
    if rule.path:
        try:
            JsonPath(rule.path)
        except ValueError as exc:
            return f"path: {exc}"
    elif rule.comparator not in _HEADER_COMPARATORS:
        return f"comparator {rule.comparator!r} does not apply to headers; use one of " + (
            ", ".join(_HEADER_COMPARATORS)
        )
    needs = {
        "numeric": (rule.tolerance > 0 or rule.relative > 0, "set 'tolerance' or 'relative' > 0"),
        "timestamp": (rule.seconds > 0, "set 'seconds' > 0"),
        "regex": (bool(rule.pattern), "set 'pattern'"),
    }
    ok, fix = needs.get(rule.comparator, (True, ""))
    if not ok:
        return f"comparator {rule.comparator!r}: {fix}"
    if rule.tolerance < 0 or rule.relative < 0 or rule.seconds < 0:
        return "'tolerance', 'relative' and 'seconds' cannot be negative"
    if rule.key and rule.comparator != "unordered":
        return "'key' applies only to comparator = \"unordered\""
    if rule.pattern:
        try:
            re.compile(rule.pattern)
        except re.error as exc:
            return f"pattern {rule.pattern!r} is not a regular expression: {exc}"
    return endpoint_problem(rule.endpoint)


def endpoint_problem(endpoint: str) -> str:
    """Why ``endpoint`` is not "", "*", "/template" or "METHOD /template"; "" when it is."""
    if endpoint in ("", "*"):
        return ""
    try:
        compile_template(endpoint)
    except ValueError as exc:
        return str(exc).replace("template", "endpoint", 1)
    return ""


def endpoint_matches(selector: str, endpoint: str) -> bool:
    """Whether a rule's ``endpoint`` selects ``endpoint`` (``METHOD template``)."""
    if selector in ("", "*") or selector == endpoint:
        return True
    return selector.startswith("/") and endpoint.partition(" ")[2] == selector
