"""JSON bodies in envelopes, as the scrub tests build and read them."""

from __future__ import annotations

import orjson

from shadowtap.envelope import Envelope
from shadowtap.scrub.scrubber import Scrubber


def json_env(doc: object, **kw: object) -> Envelope:
    body = orjson.dumps(doc)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return Envelope(method="POST", path="/api", headers=headers, body=body, **kw)  # type: ignore[arg-type]


def scrubbed_json(scrubber: Scrubber, doc: object) -> object:
    """``doc`` scrubbed as a JSON request body; its Content-Length still matches."""
    env = json_env(doc)
    scrubber.scrub(env)
    assert env.header("content-length") == str(len(env.body))
    return orjson.loads(env.body)
