"""Small builders for diff tests: sides from JSON documents, rules from TOML-like dicts."""

from __future__ import annotations

from typing import Any

import orjson

from shadowtap.diff.model import Side
from shadowtap.diff.rules import Rules, parse_rules

JSON = ("content-type", "application/json")


def json_side(
    doc: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = (), **kw: Any
) -> Side:
    return Side(status, (JSON, *headers), orjson.dumps(doc), **kw)


def rules(**data: Any) -> Rules:
    return parse_rules({"version": 1, **data})
