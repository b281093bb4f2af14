"""Small builders for diff tests: sides from JSON documents, rules from TOML-like dicts,
records of a three-way run with planted regressions."""

from __future__ import annotations

import random
import uuid
from typing import Any

import orjson

from shadowtap.diff.model import Record, Request, Side
from shadowtap.diff.rules import Rules, parse_rules
from shadowtap.diff.run import Roles

JSON = ("content-type", "application/json")


def json_side(
    doc: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = (), **kw: Any
) -> Side:
    return Side(status, (JSON, *headers), orjson.dumps(doc), **kw)


def rules(**data: Any) -> Rules:
    return parse_rules({"version": 1, **data})


ROLES = Roles("v1-a", "v2", secondary="v1-b")
NOISE_RULES = [
    {"path": "$..price", "comparator": "numeric", "tolerance": 0.01},
    {"path": "$..discount", "comparator": "numeric", "tolerance": 0.01},
]


def _user(i: int, version: int, rng: random.Random) -> dict[str, Any]:
    tags = ["a", "b", "c"]
    rng.shuffle(tags)  # an unordered array, shuffled by every version
    doc: dict[str, Any] = {
        "id": i,
        "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "generated_at": f"2024-05-01T10:{rng.randint(10, 59)}:{rng.randint(10, 59)}Z",
        "price": 10.0 + rng.random() / 1000,  # a float within tolerance
        "discount": 0.5,
        "tags": tags,
        "steps": ["pick", "pack", "ship"],
        "count": 3,
        "name": "Ann",
    }
    if version == 2:
        doc["count"] = "3"  # type changed
        del doc["name"]  # key dropped
        doc["steps"] = ["ship", "pack", "pick"]  # an array whose order matters, reordered
        doc["discount"] = 0.75  # beyond tolerance
    return doc


def _side(doc: Any, status: int, ms: float, rng: random.Random) -> Side:
    headers = (
        ("Date", f"Wed, 01 May 2024 10:00:{rng.randint(10, 59)} GMT"),
        ("Server", f"s{rng.randint(1, 9)}"),
    )
    return json_side(doc, status, headers, duration_ms=ms)


def three_way_records(n: int, seed: int = 7) -> list[Record]:
    """``n`` records of three targets (v1-a, v1-b: baselines; v2: candidate) and production,
    over three endpoints, with planted regressions in v2 and noise in every version."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        route = ("/users/{}", "/orders/{}", "/slow/{}")[i % 3]
        path = route.format(1000 + i)
        sides = {}
        for name, version in (("v1-a", 1), ("v1-b", 1), ("v2", 2)):
            doc = (
                _user(i, version, rng)
                if route == "/users/{}"
                else {"id": i, "at": str(uuid.uuid4())}
            )
            status = 500 if version == 2 and route == "/orders/{}" else 200
            ms = 5 + rng.random() * (3 if version == 2 and route == "/slow/{}" else 1) * 5
            if version == 2 and route == "/slow/{}":
                ms *= 3
            sides[name] = _side(doc, status, ms, rng)
        production = _side(_user(i, 1, rng) if route == "/users/{}" else {"id": i}, 200, 0.5, rng)
        out.append(Record(Request(str(i), "GET", path, ts=i), sides, production))
    return out
