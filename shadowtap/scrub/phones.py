"""Phone numbers: found by shape, and told apart from dates, amounts, versions and ids.

Under a phone-like name any phone-shaped span is a phone; elsewhere only a span written as
one (E.164 with ``+``, NANP with separators or brackets, or a ``scrub_phone_regions``
national format), of a length ``phonenumbers`` calls *possible*, not only valid: numbers
with unassigned area codes (``+1 373-…``, ``(459) …``) are not valid, and still someone's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shadowtap.errors import ScrubError
from shadowtap.scrub.entities import Finding

PHONE_SCORE = 0.4  # what a phone finding scores: the default threshold
_PHONE_SPAN = re.compile(r"(?<![\w.+/-])\+?\(?\d[\d\s().-]{5,19}\d(?![\w/]|\.\d|-\d|@)")
NANP = re.compile(r"(?:\+?1[ .-]?)?\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]?\d{4}")
# A NANP number written as one: brackets or separators between area code, exchange and line.
_NANP_FORMAT = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_DECIMAL = re.compile(r"\+?\d+\.\d+")
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}")


class PhoneFinder:
    """Phone-shaped spans in a value; built once for ``scrub_phone_regions``."""

    __slots__ = ("_trunk_prefixes",)

    def __init__(self, regions: Sequence[str]) -> None:
        self._trunk_prefixes = _trunk_prefixes(regions)

    def spans(self, text: str, hint: bool, taken: list[Finding]) -> list[tuple[int, int]]:
        """Phone-shaped spans: any under a phone-like name (``hint``), else those written as
        a phone; none that overlaps a finding in ``taken``."""
        out: list[tuple[int, int]] = []
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
                out.append((start, end))
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
    trunk prefix, usually ``0``, then groups) marks a phone; NANP's format is ``_NANP_FORMAT``.
    An unknown region fails at start-up."""
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
