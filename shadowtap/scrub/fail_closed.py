"""Fail closed: Presidio's checks widened from "valid" to "shaped like one".

Real traffic is full of typos, test values and numbers from elsewhere, and each is still
someone's data. Presidio's recognizers discard what fails their checks (Luhn, IBAN check
digits, known top-level domains, issued SSN ranges); these wrappers keep a value that is
written as the entity, and still refuse lookalikes written otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from shadowtap.scrub.cards import is_card_typo, written_as_card
from shadowtap.scrub.entities import Entity

# An e-mail host whose last label is one of these is a file name ("logo@2x.png").
_FILE_SUFFIXES = frozenset(
    {
        *("png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp", "tif", "tiff"),
        *("css", "js", "mjs", "map", "json", "xml", "html", "htm", "txt", "csv", "pdf"),
        *("gz", "tgz", "tar", "woff", "woff2", "ttf", "otf", "eot"),
        *("mp3", "mp4", "webm", "wav", "ogg", "avi"),
    }
)


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


def _card_written_as_one(validate: Callable[[str], bool]) -> Callable[[str], bool]:
    """Presidio's Luhn check, on numbers written as a card (``cards.written_as_card``)."""

    def validate_result(text: str) -> bool:
        return written_as_card(text) and bool(validate(text))

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


# Which check of each recognizer is widened, and how; the others' are kept as they are.
_WIDEN: dict[Entity, tuple[str, Callable[[Any], Any]]] = {
    Entity.EMAIL_ADDRESS: ("validate_result", _email_by_host),
    Entity.CREDIT_CARD: ("validate_result", _card_written_as_one),
    Entity.IBAN_CODE: ("validate_result", _iban_or_shaped),
    Entity.US_SSN: ("invalidate_result", lambda _presidios: _mixed_delimiters),
}
# A match the (widened) validator still refuses is kept when its context says so:
# ``(text, start, end) -> keep``.
IN_CONTEXT: dict[Entity, Callable[[str, int, int], bool]] = {Entity.CREDIT_CARD: is_card_typo}


def widen(entity: Entity, recognizer: Any) -> None:
    """Widen a Presidio recognizer's checks from "valid" to "shaped like one"."""
    if entity in _WIDEN:
        check, wrap = _WIDEN[entity]
        setattr(recognizer, check, wrap(getattr(recognizer, check)))
