"""Cheap tests that decide whether a value is analyzed at all.

Most values stop at ``PRESCREEN``: without an ``@``, a run of digits, ``eyJ``, a key prefix…
a value cannot hold an entity. A value that passes runs only the recognizers whose
``GATES`` entry matches it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from shadowtap.scrub.entities import Entity

# One cheap test for "could hold an entity": an @, 6+ digits with separators (IPv4 too), an
# IPv6-ish colon group, a JWT, a key prefix or an IBAN's country and check digits (upper
# case, as Presidio's IBAN recognizer: lower-case hex ids do not wake it). Values that fail
# it are never analyzed. The lookahead names every first character, so the search skips
# the rest of a value at C speed (a third faster over typical JSON values).
PRESCREEN = re.compile(
    r"(?=[@\d:eAsprgxA-Z])(?:@|\d[\d\s().+/-]{4,}\d|:[0-9A-Fa-f]{0,4}:|eyJ|AKIA|ASIA|AIza|"
    r"\b[spr]k_|gh[pousr]_|github_pat_|xox[abprs]-|[A-Z]{2}\d{2})"
)


def _search(pattern: str) -> Callable[[str], bool]:
    search = re.compile(pattern).search
    return search  # type: ignore[return-value]  # a match object is truthy, None is not


# Whether a value that passed the pre-screen can hold this entity (phones have their own
# span pattern, shadowtap.scrub.phones).
GATES: dict[Entity, Callable[[str], bool]] = {
    Entity.EMAIL_ADDRESS: lambda s: "@" in s,
    Entity.CREDIT_CARD: _search(r"(?:\d[ -]?){12}"),
    Entity.IBAN_CODE: _search(r"[A-Z]{2}\d{2}"),  # upper case only, as Presidio's recognizer
    Entity.US_SSN: _search(r"\d{3}[- .]\d{2}[- .]\d{4}"),
    Entity.IP_ADDRESS: _search(
        r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"
    ),
    Entity.JWT: lambda s: "eyJ" in s,
    Entity.API_KEY: _search(r"AKIA|ASIA|AIza|[spr]k_|gh[pousr]_|github_pat_|xox[abprs]-"),
}
