"""Scrub: nothing sensitive leaves the production trust zone.

Every place a captured request (and its response) can carry personal data is scrubbed: the
path, the query string, header values, JSON bodies field by field (the result is valid JSON
with the same shape), form bodies, and anything else as text. gzip/deflate bodies are
inflated first; a body that cannot be read (br, zstd, …) fails closed with ScrubError, so
the worker sends the record to the DLQ, never to the mirror.

How values are found, cheapest first:

1. field-name rules: a JSON key, form/query name, header name or cookie whose words match
   ``scrub_field_names`` (password, token, secret, ssn, card, cvv, iban, …) is replaced
   without analysis; header names in ``scrub_headers`` (Authorization, Cookie, …) too;
2. a single pre-screen regex: a value with no ``@``, no run of digits, no ``eyJ``, no
   key prefix… cannot hold an entity and is left alone (most values stop here);
3. Presidio's pattern recognizers, only those of ``scrub_entities`` whose own cheap gate
   matches (no NER, no model download); JWTs and API keys (Stripe, AWS, GitHub, Slack,
   Google) have recognizers of ours; phone numbers are ours too (next section);
4. results per distinct value are cached (``scrub_cache_size``).

Fail closed: under a sensitive name or in a sensitive shape, invalid is not safe. Real
traffic is full of typos, test values and numbers from elsewhere, and each is still
someone's data, so a value is scrubbed when it is *shaped* like an entity, valid or not:

- phone numbers: under a phone-like name (the words ``phone``, ``tel``, ``mobile``, ``fax``,
  ``msisdn``, ``cell`` in snake_case, camelCase or kebab-case; not ``hotel``, ``cancelled``),
  any phone-shaped value, bare digits too; elsewhere a number *written* as a phone: E.164
  with ``+``, NANP with separators or brackets, or the national format (trunk prefix, then
  groups) of one of ``scrub_phone_regions``, whose length ``phonenumbers`` calls *possible*
  (unassigned area codes and numbers of other countries included);
- card numbers that fail Luhn, when laid out as a major network's card (prefix, length,
  4-4-4-4 / 4-6-5 / 4-6-4 or contiguous); a Luhn-valid number only when written as a card
  (not a 13-digit barcode, not a 3-7-7 order number);
- IBANs with bad check digits in their country's exact format;
- e-mails under private top-level domains (``.internal``, ``.corp``, ``.local``), but not
  file names (``logo@2x.png``) or package pins (``react@18.2.0``);
- SSN-shaped numbers outside the issued ranges (``000``, ``666``, ``9xx``, ``…-00-…``);
- IPv6 short forms (``::1``, ``fe80::1``) and unsigned JWTs match as they are.

A number with letters next to it, a date, a decimal or a bare digit run (outside a phone
name) is not phone-shaped; four dotted numbers that are a valid IPv4 literal are an address
even when they are a version (nothing tells them apart).

With ``scrub_nlp_model`` naming an installed spaCy model, Presidio's AnalyzerEngine also
looks for names and locations in free text (off by default).

Replacements (``scrub_mode``):

- ``pseudonymize`` (default): consistent per ``scrub_key`` (keyed HMAC-SHA256), and shaped
  like the original so staging validation passes: an e-mail stays an e-mail
  (``u-…@example.com``), a card number a Luhn-valid test number with the same layout, a phone
  one with the same layout (a valid phone of the same region when the original was valid;
  NANP keeps its area code), an IBAN one with valid check digits, an SSN a valid-form SSN,
  an IP a private address, a JWT a well-formed JWT; field-rule values keep their character
  classes and length;
- ``redact``: ``[EMAIL_ADDRESS]`` … and ``[REDACTED]``;
- ``hash``: ``<ENTITY>_<16 hex digits of HMAC>``.

Settings (``[processor]``): ``scrub_mode``, ``scrub_key`` (empty: a fixed development key —
set one in production, the same for every worker), ``scrub_entities``,
``scrub_thresholds`` (minimum score per entity, default 0.4, US_SSN 0.5),
``scrub_field_names``, ``scrub_headers``, ``scrub_skip_headers`` (values left as they are),
``scrub_phone_regions`` (ISO codes ``phonenumbers`` knows, else start-up fails),
``scrub_nlp_model``, ``scrub_cache_size``::

    scrubber = Scrubber.from_settings(settings.processor)
    counts = scrubber.scrub(env)      # in place; {"EMAIL_ADDRESS": 2, "field": 1, …}
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import orjson

from shadowtap.config import ProcessorSettings
from shadowtap.envelope import REDACTED, Envelope
from shadowtap.errors import ScrubError
from shadowtap.headers import Headers

log = logging.getLogger(__name__)

DEV_KEY = "shadowtap-development-key"
DEFAULT_THRESHOLD = 0.4
DEFAULT_THRESHOLDS = {"US_SSN": 0.5}
FIELD = "field"  # the count key for values replaced by a field-name or header rule

# One cheap test for "could hold an entity": an @, 6+ digits with separators (IPv4 too), an
# IPv6-ish colon group, a JWT, a key prefix or an IBAN's country and check digits (upper
# case, as Presidio's IBAN recognizer: lower-case hex ids do not wake it). Values that fail
# it are never analyzed. The lookahead names every first character, so the search skips
# the rest of a value at C speed (a third faster over typical JSON values).
_PRESCREEN = re.compile(
    r"(?=[@\d:eAsprgxA-Z])(?:@|\d[\d\s().+/-]{4,}\d|:[0-9A-Fa-f]{0,4}:|eyJ|AKIA|ASIA|AIza|"
    r"\b[spr]k_|gh[pousr]_|github_pat_|xox[abprs]-|[A-Z]{2}\d{2})"
)
_PHONE_SPAN = re.compile(r"(?<![\w.+/-])\+?\(?\d[\d\s().-]{5,19}\d(?![\w/]|\.\d|-\d|@)")
_PHONE_SCORE = 0.4
_NANP = re.compile(r"(?:\+?1[ .-]?)?\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]?\d{4}")
# A NANP number written as one: brackets or separators between area code, exchange and line.
_NANP_FORMAT = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_DECIMAL = re.compile(r"\+?\d+\.\d+")
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}")
_GATES: dict[str, Callable[[str], bool]] = {
    "EMAIL_ADDRESS": lambda s: "@" in s,
    "CREDIT_CARD": re.compile(r"(?:\d[ -]?){12}").search,  # type: ignore[dict-item]
    # upper case only, as Presidio's IBAN recognizer
    "IBAN_CODE": re.compile(r"[A-Z]{2}\d{2}").search,  # type: ignore[dict-item]
    "US_SSN": re.compile(r"\d{3}[- .]\d{2}[- .]\d{4}").search,  # type: ignore[dict-item]
    "IP_ADDRESS": re.compile(
        r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"
    ).search,  # type: ignore[dict-item]
    "JWT": lambda s: "eyJ" in s,
    "API_KEY": re.compile(r"AKIA|ASIA|AIza|[spr]k_|gh[pousr]_|github_pat_|xox[abprs]-").search,  # type: ignore[dict-item]
}
# Key shapes, with lengths loose enough that a truncated or padded key is still a key.
_API_KEY_PATTERNS = (
    r"\b[spr]k_(?:live|test)_[0-9A-Za-z]{10,}\b",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{12,}\b",
    r"\bgh[pousr]_[0-9A-Za-z]{20,}\b",
    r"\bgithub_pat_[0-9A-Za-z_]{20,}\b",
    r"\bxox[abprs]-[0-9A-Za-z-]{10,}\b",
    r"\bAIza[0-9A-Za-z_-]{30,}",
)
_JWT_PATTERN = r"\beyJ[0-9A-Za-z_-]{5,}\.eyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*"
_API_KEY_PREFIX = re.compile(
    r"^(?:[spr]k_(?:live|test)_|AKIA|ASIA|gh[pousr]_|github_pat_|xox[abprs]-|AIza)"
)
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
# A name holds a phone number when one of its words is one of these (glued to number/no/nr
# too: "phonenumber", "telno"), or ends in "phone" ("telephone", "homephone"). Words, not
# substrings: "hotel", "cancelled", "telemetry" and "cellar" are not phone names.
_PHONE_WORDS = frozenset(
    w + tail
    for w in ("phone", "tel", "telefon", "telefono", "mobile", "fax", "msisdn", "cell")
    for tail in ("", "number", "num", "no", "nr")
)
# ... unless its last word says the value is a time or a count ("phone_verified_at").
_NOT_PHONE_LAST = frozenset({"at", "on", "date", "time", "ts", "timestamp", "count"})
# An e-mail host whose last label is one of these is a file name ("logo@2x.png").
_FILE_SUFFIXES = frozenset(
    {
        *("png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp", "tif", "tiff"),
        *("css", "js", "mjs", "map", "json", "xml", "html", "htm", "txt", "csv", "pdf"),
        *("gz", "tgz", "tar", "woff", "woff2", "ttf", "otf", "eot"),
        *("mp3", "mp4", "webm", "wav", "ogg", "avi"),
    }
)
_TEXT_ENCODINGS = ("gzip", "x-gzip", "deflate")


def offline_tldextract() -> None:
    """Make tldextract use its bundled suffix list: no network call at start-up."""
    import tldextract

    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
    )


# Characters without which a Presidio pattern cannot match: the pattern is not run at all.
_NEEDS = {
    "IPv4_mapped": ("::", "."),
    "IPv4_embedded": (":", "."),
    "IPv4": (".",),
    "IPv6": (":",),
    "IPv6_unspecified": ("::",),
}


class _Direct:
    """A Presidio PatternRecognizer's own patterns and validators, without its result objects.

    Same decisions as ``PatternRecognizer.analyze`` (regex, ``validate_result`` lifting the
    score to 1 or discarding, ``invalidate_result`` discarding) at a fraction of the cost.
    """

    __slots__ = ("_fail_closed", "_patterns", "_rec")

    def __init__(
        self, recognizer: Any, fail_closed: Callable[[str, int, int], bool] | None = None
    ) -> None:
        import regex  # type: ignore[import-untyped]

        flags = recognizer.global_regex_flags or 0
        self._rec = recognizer
        self._fail_closed = fail_closed  # keeps a match the validator refused, in context
        self._patterns = [
            (regex.compile(p.regex, flags), p.score, _NEEDS.get(p.name, ()))
            for p in recognizer.patterns
        ]

    def __call__(self, text: str) -> list[tuple[int, int, float]]:
        best: dict[tuple[int, int], float] = {}  # one result per span, the highest score
        for rx, base, needs in self._patterns:
            if needs and not all(n in text for n in needs):
                continue
            for m in rx.finditer(text):
                span = m.span()
                if span[0] == span[1]:
                    continue
                matched = text[span[0] : span[1]]
                valid = self._rec.validate_result(matched)
                if valid is False and self._fail_closed is not None:
                    valid = self._fail_closed(text, *span) or False
                if valid is False or self._rec.invalidate_result(matched):
                    continue
                score = 1.0 if valid else base
                if score > best.get(span, 0.0):
                    best[span] = score
        return [(start, end, score) for (start, end), score in best.items()]


def _email_by_host(validate: Callable[[str], bool]) -> Callable[[str], bool]:
    """Presidio's e-mail check, failing closed and remembered per host.

    A host tldextract does not know (``.internal``, ``.corp``, ``.local``) still makes an
    e-mail, unless its last label is a file suffix (``logo@2x.png``) or not a word
    (``react@18.2.0``). tldextract looks at the host alone (``lenient_netloc``), and hosts
    repeat where addresses do not.
    """
    from tldextract.remote import lenient_netloc

    known: dict[str, bool] = {}

    def validate_result(text: str) -> bool:
        host = lenient_netloc(text)
        ok = known.get(host)
        if ok is None:
            label = host.rpartition(".")[2]
            ok = bool(validate(text)) or (
                len(label) >= 2 and label.isalpha() and label.lower() not in _FILE_SUFFIXES
            )
            if len(known) < 10_000:
                known[host] = ok
        return ok

    return validate_result


# Card numbers of the major networks by prefix and length, and how each length is grouped.
_CARD_NETWORK = re.compile(
    r"(?=4|5[1-5]|2[2-7]|6011|64[4-9]|65|35)\d{16}|(?=3[47])\d{15}|(?=30[0-5]|36|38)\d{14}"
)
_CARD_GROUPS = {16: (4, 4, 4, 4), 15: (4, 6, 5), 14: (4, 6, 4)}
_MASTERCARD_2_SERIES = r"\b2[2-7]\d{2}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b"  # Presidio's misses it
_MORE_GROUPS = {" ": re.compile(r" \d+(?![\d/])"), "-": re.compile(r"-\d+(?![\d/])")}


def _written_as_card(text: str) -> bool:
    """14 to 19 digits, contiguous or split by one kind of separator into three groups or
    more: an EAN-13 barcode or a 3-7-7 order number passes Luhn one time in ten, but is not
    written as a card."""
    digits = sum(c.isdigit() for c in text)
    separators = [c for c in text if not c.isdigit()]
    return 14 <= digits <= 19 and (
        not separators or (len(separators) >= 2 and len(set(separators)) == 1)
    )


def is_card_shaped(text: str) -> bool:
    """Laid out as a card number of a major network, whatever its Luhn check says."""
    digits = _only_digits(text)
    if not _CARD_NETWORK.fullmatch(digits):
        return False
    separators = {c for c in text if not c.isdigit()}
    if not separators:
        return True
    if len(separators) > 1:
        return False
    groups = tuple(len(g) for g in text.split(separators.pop()))
    return groups == _CARD_GROUPS[len(digits)]


def _card_typo(text: str, start: int, end: int) -> bool:
    """A card-shaped number that fails Luhn is a typo of a card, unless it is four groups of
    a longer run (a 22-digit parcel number's middle); a trailing expiry ``12/28`` is fine."""
    number = text[start:end]
    if not is_card_shaped(number):
        return False
    separator = next((c for c in number if not c.isdigit()), None)
    if separator is None:
        return True
    if start >= 2 and text[start - 1] == separator and text[start - 2].isdigit():
        return False
    return not _MORE_GROUPS[separator].match(text, end)


def _card_written_as_one(validate: Callable[[str], bool]) -> Callable[[str], bool]:
    """Presidio's Luhn check, on numbers written as a card (``_written_as_card``)."""

    def validate_result(text: str) -> bool:
        return _written_as_card(text) and bool(validate(text))

    return validate_result


def _iban_or_shaped(validate: Callable[[str], bool | None]) -> Callable[[str], bool | None]:
    """Presidio's IBAN check, failing closed: bad check digits in a country's exact format
    are a typo of an IBAN, not something else."""
    from presidio_analyzer.predefined_recognizers.generic.iban_patterns import (
        regex_per_country,
    )

    formats = {country: re.compile(rx) for country, rx in regex_per_country.items()}

    def validate_result(text: str) -> bool | None:
        result = validate(text)
        if result is False:
            compact = text.replace(" ", "").replace("-", "")
            shape = formats.get(compact[:2])
            if shape is not None and shape.fullmatch(compact):
                return True
        return result

    return validate_result


def _mixed_delimiters(text: str) -> bool:
    """The one SSN check kept from Presidio: ``123-45 6789`` is not written as one number.
    Numbers outside the issued ranges (``000``, ``666``, ``9xx``, group ``00``, serial
    ``0000``) are typos or test values of an SSN, and scrubbed."""
    return len({c for c in text if not c.isdigit()}) > 1


def _fail_closed(entity: str, recognizer: Any) -> None:
    """Widen a Presidio recognizer's checks from "valid" to "shaped like one"."""
    if entity == "EMAIL_ADDRESS":
        recognizer.validate_result = _email_by_host(recognizer.validate_result)
    elif entity == "CREDIT_CARD":
        recognizer.validate_result = _card_written_as_one(recognizer.validate_result)
    elif entity == "IBAN_CODE":
        recognizer.validate_result = _iban_or_shaped(recognizer.validate_result)
    elif entity == "US_SSN":
        recognizer.invalidate_result = _mixed_delimiters


class _Analyze:
    """A recognizer with its own ``analyze`` (IBAN), called as Presidio would."""

    __slots__ = ("_entity", "_rec")

    def __init__(self, recognizer: Any, entity: str) -> None:
        self._rec, self._entity = recognizer, entity

    def __call__(self, text: str) -> list[tuple[int, int, float]]:
        return [(r.start, r.end, r.score) for r in self._rec.analyze(text, [self._entity], None)]


class _Finding:
    __slots__ = ("end", "entity", "score", "start")

    def __init__(self, start: int, end: int, entity: str, score: float) -> None:
        self.start, self.end, self.entity, self.score = start, end, entity, score


class Detector:
    """Finds entities in one value with the recognizers its gates select."""

    def __init__(
        self,
        entities: Iterable[str],
        thresholds: dict[str, float] | None = None,
        phone_regions: Sequence[str] = ("US", "GB", "DE", "FR"),
        nlp_model: str = "",
    ) -> None:
        offline_tldextract()
        from presidio_analyzer import Pattern, PatternRecognizer
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            UsSsnRecognizer,
        )

        self.entities = tuple(entities)
        self.thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        self.phone_regions = tuple(phone_regions)
        self._trunk_prefixes = _trunk_prefixes(self.phone_regions)
        factories: dict[str, Callable[[], Any]] = {
            "EMAIL_ADDRESS": EmailRecognizer,
            "CREDIT_CARD": lambda: CreditCardRecognizer(
                patterns=[
                    *CreditCardRecognizer.PATTERNS,
                    Pattern("Mastercard 2-series", _MASTERCARD_2_SERIES, 0.3),
                ]
            ),
            "IBAN_CODE": IbanRecognizer,
            "US_SSN": UsSsnRecognizer,
            "IP_ADDRESS": IpRecognizer,
            "JWT": lambda: PatternRecognizer(
                "JWT", patterns=[Pattern("jwt", _JWT_PATTERN, 0.9)], global_regex_flags=0
            ),
            "API_KEY": lambda: PatternRecognizer(
                "API_KEY",
                patterns=[Pattern(f"key{i}", p, 0.9) for i, p in enumerate(_API_KEY_PATTERNS)],
                global_regex_flags=0,
            ),
        }
        self._recognizers: list[
            tuple[str, Callable[[str], Any], Callable[[str], list[tuple[int, int, float]]]]
        ] = []
        for entity in self.entities:
            if entity == "PHONE_NUMBER":
                continue
            if entity in factories:
                rec = factories[entity]()
                _fail_closed(entity, rec)
                if entity == "IBAN_CODE":
                    run: Callable[[str], list[tuple[int, int, float]]] = _Analyze(rec, entity)
                else:
                    run = _Direct(rec, _card_typo if entity == "CREDIT_CARD" else None)
                self._recognizers.append((entity, _GATES[entity], run))
            elif not nlp_model:
                raise ScrubError(
                    f"scrub entity {entity!r} has no pattern recognizer here; known: "
                    f"{', '.join(sorted([*factories, 'PHONE_NUMBER']))} (others need "
                    "scrub_nlp_model)"
                )
        self._phones = "PHONE_NUMBER" in self.entities
        self._nlp: Any = None
        self._nlp_entities: list[str] = []
        if nlp_model:
            self._nlp, self._nlp_entities = _nlp_engine(nlp_model, self.entities, factories)

    def find(self, text: str, phone_hint: bool = False) -> list[_Finding]:
        """Entities in ``text`` above their thresholds, overlaps resolved (best first)."""
        if not _PRESCREEN.search(text) and not (phone_hint and self._phones):
            return self._find_nlp(text, [])
        found: list[_Finding] = []
        for entity, gate, run in self._recognizers:
            if gate(text):
                threshold = self.thresholds.get(entity, DEFAULT_THRESHOLD)
                for start, end, score in run(text):
                    if score >= threshold:
                        found.append(_Finding(start, end, entity, score))
        if self._phones:
            found.extend(self._find_phones(text, phone_hint, found))
        return self._find_nlp(text, found)

    def _find_phones(self, text: str, hint: bool, taken: list[_Finding]) -> list[_Finding]:
        """Phone-shaped spans: any under a phone-like name, else those written as a phone."""
        out: list[_Finding] = []
        if self.thresholds.get("PHONE_NUMBER", DEFAULT_THRESHOLD) > _PHONE_SCORE:
            return out
        for m in _PHONE_SPAN.finditer(text):
            span = m.group().rstrip()
            start = m.start()
            if span[0] == "(" and ")" not in span:  # "(459.968.4802)": the bracket is the text's
                span, start = span[1:], start + 1
            digits = sum(c.isdigit() for c in span)
            if not 7 <= digits <= 15 or _DATE_LIKE.fullmatch(span):
                continue
            end = start + len(span)
            if any(start < t.end and t.start < end for t in taken):
                continue  # a card, IBAN or SSN already claims these digits
            if hint or self._written_as_phone(span, digits):
                out.append(_Finding(start, end, "PHONE_NUMBER", _PHONE_SCORE))
        return out

    def _written_as_phone(self, span: str, digits: int) -> bool:
        """E.164 with ``+``, NANP with separators or brackets, or a configured region's
        national format (its trunk prefix, then groups), of a possible length: possible, not
        only valid. A number valid somewhere but written otherwise ("2024-01-15 10:30",
        "94107-1234", "21.17.179") is a date, a ZIP+4 or a version more often than a phone."""
        if digits == len(span) or _DECIMAL.fullmatch(span.strip("()")):
            return False  # a bare digit run or a decimal is an id or an amount
        if span.startswith("+"):
            return is_possible_phone(span, None)
        if _NANP_FORMAT.fullmatch(span):
            return True
        bare = span.lstrip("(")
        return any(
            bare.startswith(prefix) and is_possible_phone(span, region)
            for region, prefix in self._trunk_prefixes
        )

    def _find_nlp(self, text: str, found: list[_Finding]) -> list[_Finding]:
        if self._nlp is not None and any(c.isalpha() for c in text) and " " in text:
            for r in self._nlp.analyze(text=text, language="en", entities=self._nlp_entities):
                if r.score >= self.thresholds.get(r.entity_type, DEFAULT_THRESHOLD):
                    found.append(_Finding(r.start, r.end, r.entity_type, r.score))
        if len(found) < 2:
            return found
        found.sort(key=lambda f: (-f.score, f.start - f.end))
        kept: list[_Finding] = []
        for f in found:
            if all(f.end <= k.start or f.start >= k.end for k in kept):
                kept.append(f)
        return kept


def _nlp_engine(model: str, entities: Sequence[str], patterned: Any) -> tuple[Any, list[str]]:
    """Presidio's AnalyzerEngine with an installed spaCy model, for entities we cannot regex."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": model}],
        }
    )
    try:
        engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    except (OSError, ValueError) as exc:
        raise ScrubError(f"spaCy model {model!r} is not installed: {exc}") from exc
    wanted = [e for e in entities if e not in patterned and e != "PHONE_NUMBER"]
    return engine, wanted


def is_phone(text: str, regions: Sequence[str]) -> bool:
    """Whether ``text`` is a valid phone number (international, or in one of ``regions``)."""
    import phonenumbers

    for region in (None,) if text.startswith("+") else regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


def is_possible_phone(text: str, region: str | None) -> bool:
    """Whether ``text`` has a possible length for its country: assigned or not, it could be
    someone's number (unassigned area codes, typos, test numbers)."""
    import phonenumbers

    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse(text, region)))
    except phonenumbers.NumberParseException:
        return False


def _trunk_prefixes(regions: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(region, national prefix) for the regions outside NANP, whose national format (the
    trunk prefix, usually ``0``, then groups) marks a phone; NANP's format is ``_NANP_FORMAT``."""
    import phonenumbers

    out = []
    for region in regions:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
        if meta is None:
            raise ScrubError(
                f"processor.scrub_phone_regions: {region!r} is not a region phonenumbers knows; "
                "use ISO 3166 codes such as US, GB, DE"
            )
        if meta.country_code != 1 and meta.national_prefix:
            out.append((region.upper(), meta.national_prefix))
    return tuple(out)


def is_phone_name(name: str) -> bool:
    """Whether a field's name says it holds a phone number (see ``_PHONE_WORDS``)."""
    words = [w for w in (w.rstrip("0123456789") for w in _words(name)) if w]  # phone2, at_1
    if not words or words[-1] in _NOT_PHONE_LAST:
        return False
    singular = (w[:-1] if w.endswith("s") else w for w in words)
    return any(w in _PHONE_WORDS or w.endswith("phone") for w in singular)


class Pseudonyms:
    """Format-keeping, consistent replacements derived from a keyed HMAC."""

    def __init__(self, key: str, phone_regions: Sequence[str] = ("US",)) -> None:
        self._key = key.encode()
        self._regions = tuple(phone_regions)

    def digest(self, kind: str, value: str, n: int = 32) -> bytes:
        out = b""
        counter = 0
        while len(out) < n:
            msg = f"{kind}\x00{counter}\x00{value}".encode("utf-8", "surrogatepass")
            out += hmac.new(self._key, msg, hashlib.sha256).digest()
            counter += 1
        return out[:n]

    def hex(self, kind: str, value: str, n: int = 16) -> str:
        return self.digest(kind, value, (n + 1) // 2).hex()[:n]

    def digits(self, kind: str, value: str, n: int) -> str:
        return "".join(str(b % 10) for b in self.digest(kind, value, n))

    def shaped(self, kind: str, value: str) -> str:
        """Same length and character classes: digits stay digits, letters letters."""
        d = self.digest(kind, value, max(len(value), 1))
        out = []
        for c, b in zip(value, d, strict=False):
            if c.isdigit():
                out.append(str(b % 10))
            elif "a" <= c <= "z":
                out.append(chr(97 + b % 26))
            elif "A" <= c <= "Z":
                out.append(chr(65 + b % 26))
            elif c.isalpha():
                out.append(chr(97 + b % 26))
            else:
                out.append(c)
        return "".join(out)

    def entity(self, entity: str, value: str) -> str:
        make = getattr(self, "_" + entity.lower(), None)
        result: str = make(value) if make is not None else self.shaped(entity, value)
        if result == value:  # astronomically rare; never hand the original back
            result = self.shaped(entity + "!", value)
        return result

    def _email_address(self, value: str) -> str:
        return f"u-{self.hex('email', value.lower(), 12)}@example.com"

    def _credit_card(self, value: str) -> str:
        n = sum(c.isdigit() for c in value)
        body = "4" + self.digits("card", _only_digits(value), max(n - 2, 1))
        return _relayout(value, body + str(luhn_check_digit(body)))

    def _us_ssn(self, value: str) -> str:
        d = self.digest("ssn", _only_digits(value), 6)
        area = 100 + int.from_bytes(d[:2], "big") % 566  # 100-665: a valid area number
        group = 1 + d[2] % 99
        serial = 1 + int.from_bytes(d[3:5], "big") % 9999
        return _relayout(value, f"{area:03d}{group:02d}{serial:04d}")

    def _iban_code(self, value: str) -> str:
        compact = re.sub(r"\s", "", value).upper()
        country, bban = compact[:2], self.shaped("iban", compact[4:]).upper()
        check = 98 - int(_iban_digits(bban + country + "00")) % 97
        return _relayout(value, f"{country}{check:02d}{bban}", keep_alnum=True)

    def _ip_address(self, value: str) -> str:
        d = self.digest("ip", value, 16)
        if ":" in value:  # IPv6 (IPv4-mapped too); an IPv4 address never has a colon
            return str(ipaddress.IPv6Address(b"\xfd" + d[:15]))
        return f"10.{d[0]}.{d[1]}.{1 + d[2] % 254}"

    def _phone_number(self, value: str) -> str:
        digits = _only_digits(value)
        nanp = _NANP.fullmatch(value)
        if nanp:
            # +1 / (NPA) NXX-XXXX: keep the area code, draw a valid exchange (not N11, not 555)
            # and line, so the result is a valid number without asking phonenumbers.
            d = self.digits("phone", digits, 7)
            exchange = f"{2 + int(d[0]) % 8}{d[1]}{d[2]}"
            if exchange[1:] == "11" or exchange == "555":
                exchange = exchange[0] + "23"
            return _relayout(value, digits[: len(digits) - 7] + exchange + d[3:])
        keep = 2 if value.lstrip("(").startswith("+") else 0
        keep += 3 if len(digits) >= 10 else 0
        keep = min(keep, len(digits) - 4)
        candidate = value
        # A valid number gets a valid one; an invalid one its own shape, at the first draw.
        valid = is_phone(value, self._regions)
        for attempt in range(20 if valid else 1):
            tail = self.digits(f"phone{attempt}", digits, len(digits) - keep)
            tail = str(2 + int(tail[0]) % 8) + tail[1:]
            candidate = _relayout(value, digits[:keep] + tail)
            if candidate != value and (not valid or is_phone(candidate, self._regions)):
                return candidate
        return candidate

    def _jwt(self, value: str) -> str:
        sub = "pseudo-" + self.hex("jwt", value, 12)
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        payload = _b64url(orjson.dumps({"sub": sub}))
        return f"{header}.{payload}.{_b64url(self.digest('jwt-sig', value, 32))}"

    def _api_key(self, value: str) -> str:
        m = _API_KEY_PREFIX.match(value)
        prefix = m.group() if m else ""
        return prefix + self.shaped("apikey", value[len(prefix) :])


def luhn_check_digit(body: str) -> int:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def is_luhn_valid(number: str) -> bool:
    digits = _only_digits(number)
    return len(digits) > 1 and luhn_check_digit(digits[:-1]) == int(digits[-1])


def _only_digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _iban_digits(text: str) -> str:
    return "".join(str(int(c, 36)) for c in text)


def _relayout(original: str, chars: str, keep_alnum: bool = False) -> str:
    """Pour ``chars`` into the separators of ``original`` (spaces, dashes, brackets)."""
    it = iter(chars)
    out = []
    for c in original:
        if c.isdigit() or (keep_alnum and c.isalnum()):
            out.append(next(it, "0"))
        else:
            out.append(c)
    out.extend(it)
    return "".join(out)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.split(name) if w]


class FieldRules:
    """Field names whose values are replaced without analysis."""

    __slots__ = ("_cache", "_patterns")

    def __init__(self, names: Iterable[str]) -> None:
        self._patterns = frozenset("".join(_words(n)) for n in names if n)
        self._cache: dict[str, bool] = {}

    def is_sensitive(self, name: str) -> bool:
        """A word, adjacent words, or a long suffix of the name is a configured name."""
        hit = self._cache.get(name)
        if hit is None:
            hit = self._match(name)
            if len(self._cache) < 10_000:
                self._cache[name] = hit
        return hit

    def _match(self, name: str) -> bool:
        words = _words(name)
        for i in range(len(words)):
            joined = ""
            for w in words[i:]:
                joined += w
                if joined in self._patterns:
                    return True
        whole = "".join(words)
        return any(len(p) >= 5 and whole.endswith(p) for p in self._patterns)


class Scrubber:
    """Scrubs envelopes in place; construct once (recognizers are compiled here)."""

    def __init__(
        self,
        *,
        mode: str = "pseudonymize",
        key: str = "",
        entities: Sequence[str] = ProcessorSettings().scrub_entities,
        thresholds: dict[str, float] | None = None,
        field_names: Sequence[str] = ProcessorSettings().scrub_field_names,
        headers: Sequence[str] = ProcessorSettings().scrub_headers,
        skip_headers: Sequence[str] = ProcessorSettings().scrub_skip_headers,
        phone_regions: Sequence[str] = ProcessorSettings().scrub_phone_regions,
        nlp_model: str = "",
        cache_size: int = 65_536,
    ) -> None:
        if mode not in ("pseudonymize", "redact", "hash"):
            raise ScrubError(f"unknown scrub mode {mode!r}")
        if not key:
            log.warning("processor.scrub_key is empty: using the development key")
        self.mode = mode
        self.detector = Detector(entities, thresholds, phone_regions, nlp_model)
        self.pseudonyms = Pseudonyms(key or DEV_KEY, phone_regions)
        self.fields = FieldRules(field_names)
        self._headers = frozenset(h.lower() for h in headers)
        self._skip = frozenset(h.lower() for h in skip_headers)
        self._cache: dict[tuple[str, bool], tuple[str, tuple[str, ...]]] = {}
        self._cache_size = cache_size
        self._names: dict[str | None, int] = {}  # a field name's _PLAIN, _SECRET or _PHONE
        self._screened = self.detector._nlp is None  # with NER, every text is analyzed

    @classmethod
    def from_settings(cls, s: ProcessorSettings) -> Scrubber:
        return cls(
            mode=s.scrub_mode,
            key=s.scrub_key,
            entities=s.scrub_entities,
            thresholds=s.scrub_thresholds,
            field_names=s.scrub_field_names,
            headers=s.scrub_headers,
            skip_headers=s.scrub_skip_headers,
            phone_regions=s.scrub_phone_regions,
            nlp_model=s.scrub_nlp_model,
            cache_size=s.scrub_cache_size,
        )

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
                r = env.response
                r.headers = self._header_list(r.headers, counts)
                r.body, r.headers = self._body(r.body, r.headers, counts)
        except ScrubError:
            raise
        except Exception as exc:
            raise ScrubError(f"could not scrub request {env.id}: {exc!r}") from exc
        return dict(counts)

    def _ip(self, client: str, counts: Counter[str]) -> str:
        if not client or "IP_ADDRESS" not in self.detector.entities:
            return client
        counts["IP_ADDRESS"] += 1
        return self._replace("IP_ADDRESS", client)

    def _path(self, path: str, counts: Counter[str]) -> str:
        if "%" not in path and not _PRESCREEN.search(path):
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
        ctype = (_header(headers, "content-type") or "").lower()
        encoding = (_header(headers, "content-encoding") or "").lower().strip()
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
        kind = self._names.get(name)
        if kind is None:
            kind = self._name_kind(name)
        if kind == _SECRET:
            counts[FIELD] += 1
            return self._field_value(value)
        if kind == _PLAIN and self._screened and not _PRESCREEN.search(value):
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

    def text(self, value: str, counts: Counter[str], phone_hint: bool = False) -> str:
        """Free text: replace every entity found, reusing results for repeated values."""
        if not phone_hint and self._screened and not _PRESCREEN.search(value):
            return value
        return self._found(value, counts, phone_hint)

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
        return self.pseudonyms.entity(_looks_like(value), value)

    def _field_number(self, node: int) -> int:
        if self.mode == "redact":
            return 0
        text = str(abs(node))
        if self.mode == "hash":
            return int(self.pseudonyms.digits("field", text, len(text)))
        new = self._field_value(text)
        return int(new) if new.isdigit() else 0


_PLAIN, _SECRET, _PHONE = 0, 1, 2  # what a field's name says of its value

_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}(?: ?[0-9A-Z]{1,4}){3,8}")
_JWT_SHAPE = re.compile(_JWT_PATTERN)


def _looks_like(value: str) -> str:
    """The entity whose pseudonym keeps this field value's format (no analysis: shape only)."""
    digits = _only_digits(value)
    if 13 <= len(digits) <= 19 and is_luhn_valid(digits) and len(digits) * 2 > len(value):
        return "CREDIT_CARD"
    if _JWT_SHAPE.fullmatch(value):
        return "JWT"
    if _IBAN_SHAPE.fullmatch(value):
        return "IBAN_CODE"
    if _API_KEY_PREFIX.match(value):
        return "API_KEY"
    return "FIELD"


def _header(headers: Headers, name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None
