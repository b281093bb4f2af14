"""The Scrubber: every part of an envelope, each value by its field's rule or by analysis.

What is scrubbed, and how, is the package's docstring (shadowtap.scrub). Here:
walking the path, query, headers, cookies, bodies (inflated first; JSON, form or text) and
client address; field-name rules; the cache of results per distinct value; and the three
replacement modes.

Built from ``[processor]`` settings; keyword arguments change single settings by their
short name (``Scrubber(key="k", entities=("EMAIL_ADDRESS",))`` for ``scrub_key`` and
``scrub_entities``), every other setting keeps its default::

    scrubber = Scrubber.from_settings(settings.processor)
    counts = scrubber.scrub(env)      # in place; {"EMAIL_ADDRESS": 2, "field": 1, …}
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import zlib
from collections import Counter
from typing import Any, Literal, TypedDict, Unpack
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import orjson

from shadowtap.config import DEVELOPMENT_HASH_KEY, ProcessorSettings
from shadowtap.envelope import REDACTED, Envelope, Response
from shadowtap.errors import ScrubError
from shadowtap.headers import Headers, header_value
from shadowtap.scrub.detector import Detector
from shadowtap.scrub.entities import Entity
from shadowtap.scrub.field_names import FieldRules, is_phone_name
from shadowtap.scrub.gates import PRESCREEN
from shadowtap.scrub.pseudonyms import Pseudonyms, field_shape

log = logging.getLogger(__name__)

FIELD = "field"  # the count key for values replaced by a field-name or header rule
_IP = Entity.IP_ADDRESS.value  # counts are keyed by plain names: orjson takes no enum keys
_TEXT_ENCODINGS = ("gzip", "x-gzip", "deflate")
_PLAIN, _SECRET, _PHONE = 0, 1, 2  # what a field's name says of its value


class ScrubChanges(TypedDict, total=False):
    """``[processor]`` scrub settings by their short name: ``key`` for ``scrub_key``."""

    mode: Literal["pseudonymize", "redact", "hash"]
    key: str
    entities: tuple[str, ...]
    thresholds: dict[str, float]
    field_names: tuple[str, ...]
    headers: tuple[str, ...]
    skip_headers: tuple[str, ...]
    phone_regions: tuple[str, ...]
    nlp_model: str
    cache_size: int


class Scrubber:
    """Scrubs envelopes in place; construct once (recognizers are compiled here)."""

    def __init__(
        self, settings: ProcessorSettings | None = None, **changes: Unpack[ScrubChanges]
    ) -> None:
        s = settings if settings is not None else ProcessorSettings()
        if changes:
            named: dict[str, Any] = {f"scrub_{k}": v for k, v in changes.items()}
            s = dataclasses.replace(s, **named)
        if s.scrub_mode not in ("pseudonymize", "redact", "hash"):
            raise ScrubError(f"unknown scrub mode {s.scrub_mode!r}")
        if not s.scrub_key:
            log.warning("processor.scrub_key is empty: using the development key")
        self.mode = s.scrub_mode
        self.detector = Detector(
            s.scrub_entities, s.scrub_thresholds, s.scrub_phone_regions, s.scrub_nlp_model
        )
        self.pseudonyms = Pseudonyms(s.scrub_key or DEVELOPMENT_HASH_KEY, s.scrub_phone_regions)
        self.fields = FieldRules(s.scrub_field_names)
        self._headers = frozenset(h.lower() for h in s.scrub_headers)
        self._skip = frozenset(h.lower() for h in s.scrub_skip_headers)
        self._cache: dict[tuple[str, bool], tuple[str, tuple[str, ...]]] = {}
        self._cache_size = s.scrub_cache_size
        self._names: dict[str | None, int] = {}  # a field name's _PLAIN, _SECRET or _PHONE
        self._screened = not self.detector.uses_nlp  # with NER, every text is analyzed
        self._clean: frozenset[str] = frozenset()  # values known clean (scrub_response)

    @classmethod
    def from_settings(cls, settings: ProcessorSettings) -> Scrubber:
        return cls(settings)

    # -- envelope -------------------------------------------------------------------------

    def scrub(self, env: Envelope) -> dict[str, int]:
        """Scrub every part of ``env`` in place; return entity counts. Raises ScrubError."""
        counts: Counter[str] = Counter()
        try:
            env.path = self._path(env.path, counts)
            env.query = self._pairs(env.query, counts)
            env.headers = self._header_list(env.headers, counts)
            env.body, env.headers = self._body(env.body, env.headers, counts)
            env.client = self._ip(env.client, counts)
            if env.response is not None:
                self._response(env.response, counts)
        except ScrubError:
            raise
        except Exception as exc:
            raise ScrubError(f"could not scrub request {env.id}: {exc!r}") from exc
        return dict(counts)

    def scrub_response(self, response: Response, clean: Envelope | None = None) -> dict[str, int]:
        """Scrub a response's headers and body in place (a target's answer, before the
        replayer stores it in a result); return entity counts. Raises ScrubError.

        ``clean``: the scrubbed request it answers. A value it holds (a JSON string, a form or
        query value, a header value) is clean already, often a pseudonym the target echoes:
        it is kept as it is, so it still equals production's answer scrubbed with the same
        keys (scrubbing a pseudonym again would give another one)."""
        counts: Counter[str] = Counter()
        self._clean = _values(clean) if clean is not None else frozenset()
        try:
            self._response(response, counts)
        except ScrubError:
            raise
        except Exception as exc:
            raise ScrubError(f"could not scrub a response: {exc!r}") from exc
        finally:
            self._clean = frozenset()
        return dict(counts)

    def _response(self, r: Response, counts: Counter[str]) -> None:
        r.headers = self._header_list(r.headers, counts)
        r.body, r.headers = self._body(r.body, r.headers, counts)

    def _ip(self, client: str, counts: Counter[str]) -> str:
        if not client or _IP not in self.detector.entities:
            return client
        counts[_IP] += 1
        return self._replace(_IP, client)

    def _path(self, path: str, counts: Counter[str]) -> str:
        if "%" not in path and not PRESCREEN.search(path):
            return path  # percent-encoding hides values from the pre-screen: decode first
        segments = path.split("/")
        for i, seg in enumerate(segments):
            if seg:
                plain = unquote(seg)
                new = self.text(plain, counts)
                if new != plain:
                    segments[i] = quote(new, safe="@:+,;=!$&'()*")
        return "/".join(segments)

    def _pairs(self, raw: str, counts: Counter[str]) -> str:
        """A query string or form body: names kept, values scrubbed, encoding kept if unchanged."""
        if not raw:
            return raw
        parts = raw.split("&")
        for i, part in enumerate(parts):
            name, sep, value = part.partition("=")
            if not sep or not value:
                continue
            plain = unquote_plus(value)
            new = self.value(plain, unquote_plus(name), counts)
            if new != plain:
                parts[i] = f"{name}={quote_plus(new, safe='@:,')}"
        return "&".join(parts)

    def _header_list(self, headers: Headers, counts: Counter[str]) -> Headers:
        out: Headers = []
        for name, value in headers:
            lower = name.lower()
            if lower in self._skip or not value or value == REDACTED:
                out.append((name, value))
            elif lower in self._headers:
                counts[FIELD] += 1
                out.append((name, self._secret_header(lower, value)))
            else:  # named like a secret or a phone ("X-MSISDN"), the name's rule applies
                out.append((name, self.value(value, name, counts)))
        return out

    def _secret_header(self, name: str, value: str) -> str:
        if name == "cookie":
            return "; ".join(self._cookie_pair(p.strip()) for p in value.split(";"))
        if name == "set-cookie":
            first, sep, rest = value.partition(";")
            return self._cookie_pair(first.strip()) + sep + rest
        scheme, sep, credentials = value.partition(" ")
        if sep and scheme.isalpha() and credentials:
            return f"{scheme} {self._field_value(credentials)}"
        return self._field_value(value)

    def _cookie_pair(self, pair: str) -> str:
        name, sep, value = pair.partition("=")
        return f"{name}={self._field_value(value)}" if sep else self._field_value(pair)

    def _body(self, body: bytes, headers: Headers, counts: Counter[str]) -> tuple[bytes, Headers]:
        if not body:
            return body, headers
        original = body
        ctype = (header_value(headers, "content-type") or "").lower()
        encoding = (header_value(headers, "content-encoding") or "").lower().strip()
        if encoding and encoding != "identity":
            if encoding not in _TEXT_ENCODINGS:
                raise ScrubError(f"cannot scrub a body with content-encoding {encoding!r}")
            try:
                body = zlib.decompress(body, 47 if "gzip" in encoding else 15)
            except zlib.error as exc:
                raise ScrubError(f"cannot inflate {encoding} body: {exc}") from exc
            headers = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
        new = self._body_bytes(body, ctype, counts)
        if new is not original:
            headers = [
                (k, str(len(new))) if k.lower() == "content-length" else (k, v) for k, v in headers
            ]
        return new, headers

    def _body_bytes(self, body: bytes, ctype: str, counts: Counter[str]) -> bytes:
        if "json" in ctype or body[:1] in (b"{", b"[") or body.lstrip()[:1] in (b"{", b"["):
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                pass
            else:
                before = sum(counts.values())
                doc = self.json(doc, None, counts)
                return orjson.dumps(doc) if sum(counts.values()) != before else body
        text = body.decode("utf-8", "surrogateescape")
        if "x-www-form-urlencoded" in ctype:
            new = self._pairs(text, counts)
        else:
            new = self.text(text, counts)
        return body if new == text else new.encode("utf-8", "surrogateescape")

    # -- values ---------------------------------------------------------------------------

    def json(self, node: Any, name: str | None, counts: Counter[str]) -> Any:
        """A JSON value with the same shape; ``name`` is the key it sits under."""
        kind = type(node)
        if kind is str:
            return self.value(node, name, counts) if node else node
        if kind is dict:
            return {
                k: self.value(v, k, counts) if type(v) is str and v else self.json(v, k, counts)
                for k, v in node.items()
            }
        if kind is list:
            return [self.json(v, name, counts) for v in node]
        if kind is bool or node is None:
            return node
        if isinstance(node, int):
            if name is not None and self.fields.is_sensitive(name):
                counts[FIELD] += 1
                return self._field_number(node)
            if abs(node) >= 1_000_000:
                text = str(node)
                new = self.value(text, name, counts)
                if new != text:
                    return int(new) if new.isdigit() else self._field_number(node)
            return node
        if isinstance(node, float) and name is not None and self.fields.is_sensitive(name):
            counts[FIELD] += 1
            return 0.0
        return node

    def value(self, value: str, name: str | None, counts: Counter[str]) -> str:
        """One named value: field rule first, else analysis."""
        if self._clean and value in self._clean:
            return value
        kind = self._names.get(name)
        if kind is None:
            kind = self._name_kind(name)
        if kind == _SECRET:
            counts[FIELD] += 1
            return self._field_value(value)
        if kind == _PLAIN and self._screened and not PRESCREEN.search(value):
            return value
        return self._found(value, counts, kind == _PHONE)

    def _name_kind(self, name: str | None) -> int:
        if name is None:
            return _PLAIN
        if self.fields.is_sensitive(name):
            kind = _SECRET
        else:
            kind = _PHONE if is_phone_name(name) else _PLAIN
        if len(self._names) < 10_000:
            self._names[name] = kind
        return kind

    def text(self, value: str, counts: Counter[str]) -> str:
        """Free text: replace every entity found, reusing results for repeated values."""
        if self._screened and not PRESCREEN.search(value):
            return value
        return self._found(value, counts, False)

    def _found(self, value: str, counts: Counter[str], phone_hint: bool) -> str:
        key = (value, phone_hint)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._analyze(value, phone_hint)
            if len(value) <= 512:
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                self._cache[key] = hit
        counts.update(hit[1])
        return hit[0]

    def _analyze(self, value: str, phone_hint: bool) -> tuple[str, tuple[str, ...]]:
        found = self.detector.find(value, phone_hint)
        if not found:
            return value, ()
        out = value
        for f in sorted(found, key=lambda f: f.start, reverse=True):
            out = out[: f.start] + self._replace(f.entity, value[f.start : f.end]) + out[f.end :]
        return out, tuple(f.entity for f in found)

    def _replace(self, entity: str, original: str) -> str:
        if self.mode == "redact":
            return f"[{entity}]"
        if self.mode == "hash":
            return f"{entity}_{self.pseudonyms.hex(entity, original)}"
        return self.pseudonyms.entity(entity, original)

    def _field_value(self, value: str) -> str:
        if self.mode == "redact":
            return "[REDACTED]"
        if self.mode == "hash":
            return self.pseudonyms.hex("field", value)
        return self.pseudonyms.entity(field_shape(value), value)

    def _field_number(self, node: int) -> int:
        if self.mode == "redact":
            return 0
        text = str(abs(node))
        if self.mode == "hash":
            return int(self.pseudonyms.digits("field", text, len(text)))
        new = self._field_value(text)
        return int(new) if new.isdigit() else 0


def _values(env: Envelope) -> frozenset[str]:
    """Every value of a (scrubbed) request: JSON body strings, form and query values, header
    values and path segments."""
    out: set[str] = {v for _, v in env.headers}
    out.update(s for s in env.path.split("/") if s)
    forms = [env.query]
    if env.body.lstrip()[:1] in (b"{", b"["):
        with contextlib.suppress(orjson.JSONDecodeError):
            _strings(orjson.loads(env.body), out)
    elif env.body:
        forms.append(env.body.decode("utf-8", "replace"))
    for raw in forms:
        for part in raw.split("&"):
            _, sep, value = part.partition("=")
            if sep and value:
                out.add(unquote_plus(value))
    out.discard("")
    return frozenset(out)


def _strings(node: Any, out: set[str]) -> None:
    if type(node) is str:
        out.add(node)
    elif type(node) is dict:
        for v in node.values():
            _strings(v, out)
    elif type(node) is list:
        for v in node:
            _strings(v, out)
