"""Triage: add a noise rule or an accepted difference to the rules file.

What ``shadowtap diff noise add ENDPOINT PATH`` and ``shadowtap diff accept ENDPOINT FIELD``
do. The file is edited with tomlkit, so its comments, order and formatting stay as the team
wrote them; a missing file is created with ``version = 1``. The new entry is checked, the
edited file is checked as a whole before it replaces the old one (written to a temporary
file, then renamed), and an identical entry is not added twice.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from shadowtap.diff.rules import VERSION, Accepted, NoiseRule, parse_rules
from shadowtap.errors import ConfigError


def add_noise(
    path: str | Path, endpoint: str, field: str, comparator: str = "ignore", **options: Any
) -> NoiseRule:
    """Add ``[[noise]]`` for body path ``field`` (a JSONPath) at ``endpoint`` ("" for all).

    ``options`` are the rule's other keys (``seconds``, ``tolerance``, ``key``, ``target``,
    ``note``...). Returns the rule as the file now holds it.
    """
    values = {"path": field, "comparator": comparator, "endpoint": endpoint, **options}
    rule: NoiseRule = _append(Path(path), "noise", NoiseRule, values)
    return rule


def add_header_noise(
    path: str | Path, endpoint: str, header: str, comparator: str = "ignore", **options: Any
) -> NoiseRule:
    """Add ``[[noise]]`` for header ``header`` at ``endpoint`` ("" for all)."""
    values = {"header": header, "comparator": comparator, "endpoint": endpoint, **options}
    rule: NoiseRule = _append(Path(path), "noise", NoiseRule, values)
    return rule


def accept(path: str | Path, endpoint: str, field: str, kind: str = "", **options: Any) -> Accepted:
    """Add ``[[accept]]``: ``field``'s differences at ``endpoint`` are intended."""
    values = {"endpoint": endpoint, "field": field, "kind": kind, **options}
    accepted: Accepted = _append(Path(path), "accept", Accepted, values)
    return accepted


def _append(path: Path, section: str, cls: type[Any], values: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        keys = ", ".join(sorted(known))
        raise ConfigError(f"[[{section}]] has no key {unknown[0]!r}; keys: {keys}")
    defaults = asdict(cls())
    entry = {k: v for k, v in values.items() if v != defaults[k] or k == "comparator"}
    document = _read(path)
    tables = document.get(section)
    if tables is None:
        tables = tomlkit.aot()
        document.append(section, tables)
    elif not isinstance(tables, tomlkit.items.AoT):
        raise ConfigError(f"{path}: '{section}' must be an array of tables ([[{section}]])")
    wanted = cls(**{**defaults, **values})
    for table in tables:
        if cls(**{**defaults, **table.unwrap()}) == wanted:
            return wanted  # already there: nothing to add
    tables.append(tomlkit.item(entry))
    text = tomlkit.dumps(document)
    parse_rules(tomlkit.parse(text).unwrap(), str(path))  # never write a file we cannot read
    _write(path, text)
    return wanted


def _read(path: Path) -> tomlkit.TOMLDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        document = tomlkit.document()
        document.add(tomlkit.comment("shadowtap diff rules, read by every run"))
        document.add("version", VERSION)
        return document
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(f"rules file {path} is not valid TOML: {exc}") from exc
    parse_rules(document.unwrap(), str(path))  # a broken file is reported, not edited
    return document


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
