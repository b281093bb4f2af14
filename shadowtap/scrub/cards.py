"""What a card number looks like: a major network's prefix and length, written as a card.

Used to fail closed (a card-shaped number that fails Luhn is a typo of a card, and still
someone's) and to keep lookalikes apart (an EAN-13 barcode or a 3-7-7 order number passes
Luhn one time in ten, but is not written as a card).
"""

from __future__ import annotations

import re

from shadowtap.scrub.checkdigits import only_digits

# Card numbers of the major networks by prefix and length, and how each length is grouped.
_CARD_NETWORK = re.compile(
    r"(?=4|5[1-5]|2[2-7]|6011|64[4-9]|65|35)\d{16}|(?=3[47])\d{15}|(?=30[0-5]|36|38)\d{14}"
)
_CARD_GROUPS = {16: (4, 4, 4, 4), 15: (4, 6, 5), 14: (4, 6, 4)}
MASTERCARD_2_SERIES = r"\b2[2-7]\d{2}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b"  # Presidio's misses it
_MORE_GROUPS = {" ": re.compile(r" \d+(?![\d/])"), "-": re.compile(r"-\d+(?![\d/])")}


def written_as_card(text: str) -> bool:
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
    digits = only_digits(text)
    if not _CARD_NETWORK.fullmatch(digits):
        return False
    separators = {c for c in text if not c.isdigit()}
    if not separators:
        return True
    if len(separators) > 1:
        return False
    groups = tuple(len(g) for g in text.split(separators.pop()))
    return groups == _CARD_GROUPS[len(digits)]


def is_card_typo(text: str, start: int, end: int) -> bool:
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
