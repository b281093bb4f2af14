"""Presidio's pattern recognizers, run without Presidio's engine, and its NLP engine.

``recognizer(entity)`` builds one entity's recognizer (Presidio's, or ours for JWTs, API
keys and Mastercard's 2-series), widens its checks (shadowtap.scrub.fail_closed)
and returns a function ``text -> [(start, end, score)]``. No NER, no model download; with
``scrub_nlp_model`` naming an installed spaCy model, ``nlp_engine`` adds Presidio's
AnalyzerEngine for kinds no pattern finds (names, locations).

Presidio's e-mail and URL recognizers use tldextract, which downloads the public suffix
list at start-up by default: ``offline_tldextract`` keeps it to the bundled snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shadowtap.errors import ScrubError
from shadowtap.scrub.cards import MASTERCARD_2_SERIES
from shadowtap.scrub.credentials import API_KEY_PATTERNS, JWT_PATTERN
from shadowtap.scrub.entities import KNOWN, Entity
from shadowtap.scrub.fail_closed import IN_CONTEXT, widen

Recognize = Callable[[str], list[tuple[int, int, float]]]

# Characters without which a Presidio pattern cannot match: the pattern is not run at all.
_NEEDS = {
    "IPv4_mapped": ("::", "."),
    "IPv4_embedded": (":", "."),
    "IPv4": (".",),
    "IPv6": (":",),
    "IPv6_unspecified": ("::",),
}


def offline_tldextract() -> None:
    """Make tldextract use its bundled suffix list: no network call at start-up."""
    import tldextract

    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
    )


class _Direct:
    """A Presidio PatternRecognizer's own patterns and validators, without its result objects.

    Same decisions as ``PatternRecognizer.analyze`` (regex, ``validate_result`` lifting the
    score to 1 or discarding, ``invalidate_result`` discarding) at a fraction of the cost.
    """

    __slots__ = ("_in_context", "_patterns", "_rec")

    def __init__(
        self, recognizer: Any, in_context: Callable[[str, int, int], bool] | None = None
    ) -> None:
        import regex  # type: ignore[import-untyped]

        flags = recognizer.global_regex_flags or 0
        self._rec = recognizer
        self._in_context = in_context  # keeps a match the validator refused, in context
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
                if valid is False and self._in_context is not None:
                    valid = self._in_context(text, *span) or False
                if valid is False or self._rec.invalidate_result(matched):
                    continue
                score = 1.0 if valid else base
                if score > best.get(span, 0.0):
                    best[span] = score
        return [(start, end, score) for (start, end), score in best.items()]


class _Analyze:
    """A recognizer with its own ``analyze`` (IBAN), called as Presidio would."""

    __slots__ = ("_entity", "_rec")

    def __init__(self, recognizer: Any, entity: str) -> None:
        self._rec, self._entity = recognizer, entity

    def __call__(self, text: str) -> list[tuple[int, int, float]]:
        return [(r.start, r.end, r.score) for r in self._rec.analyze(text, [self._entity], None)]


def _presidio_recognizer(entity: Entity) -> Any:
    """A new recognizer for ``entity`` (every kind but phone numbers, which are ours)."""
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        UsSsnRecognizer,
    )

    factories: dict[Entity, Callable[[], Any]] = {
        Entity.EMAIL_ADDRESS: EmailRecognizer,
        Entity.CREDIT_CARD: lambda: CreditCardRecognizer(
            patterns=[
                *CreditCardRecognizer.PATTERNS,
                Pattern("Mastercard 2-series", MASTERCARD_2_SERIES, 0.3),
            ]
        ),
        Entity.IBAN_CODE: IbanRecognizer,
        Entity.US_SSN: UsSsnRecognizer,
        Entity.IP_ADDRESS: IpRecognizer,
        Entity.JWT: lambda: PatternRecognizer(
            "JWT", patterns=[Pattern("jwt", JWT_PATTERN, 0.9)], global_regex_flags=0
        ),
        Entity.API_KEY: lambda: PatternRecognizer(
            "API_KEY",
            patterns=[Pattern(f"key{i}", p, 0.9) for i, p in enumerate(API_KEY_PATTERNS)],
            global_regex_flags=0,
        ),
    }
    return factories[entity]()


def recognizer(entity: Entity) -> Recognize:
    """``entity``'s recognizer, failing closed, as a function of the text."""
    rec = _presidio_recognizer(entity)
    widen(entity, rec)
    if entity is Entity.IBAN_CODE:  # its own analyze() checks more than its patterns
        return _Analyze(rec, entity.value)
    return _Direct(rec, IN_CONTEXT.get(entity))


def nlp_engine(model: str, entities: Sequence[str]) -> tuple[Any, list[str]]:
    """Presidio's AnalyzerEngine with an installed spaCy model, and the entities it looks
    for: those of ``entities`` no pattern recognizer here finds."""
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
    wanted = [e for e in entities if e not in KNOWN]
    return engine, wanted
