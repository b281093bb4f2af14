"""The kinds of personal data the scrubber finds without a language model.

Each value is Presidio's name for the kind, the name ``scrub_entities`` and
``scrub_thresholds`` use. With ``scrub_nlp_model``, Presidio may also report kinds outside
this list (``PERSON``, ``LOCATION``, …): those stay plain strings.
"""

from __future__ import annotations

from enum import StrEnum


class Entity(StrEnum):
    EMAIL_ADDRESS = "EMAIL_ADDRESS"
    PHONE_NUMBER = "PHONE_NUMBER"
    CREDIT_CARD = "CREDIT_CARD"
    IBAN_CODE = "IBAN_CODE"
    US_SSN = "US_SSN"
    IP_ADDRESS = "IP_ADDRESS"
    JWT = "JWT"
    API_KEY = "API_KEY"


KNOWN: frozenset[str] = frozenset(Entity)  # "is this name one of ours?" without a TypeError


class Finding:
    """An entity found in a value: ``value[start:end]``, and how sure the recognizer is."""

    __slots__ = ("end", "entity", "score", "start")

    def __init__(self, start: int, end: int, entity: str, score: float) -> None:
        self.start, self.end, self.entity, self.score = start, end, entity, score


# Minimum score of a finding, unless ``scrub_thresholds`` says otherwise for its kind.
DEFAULT_THRESHOLD = 0.4
DEFAULT_THRESHOLDS: dict[str, float] = {Entity.US_SSN.value: 0.5}
