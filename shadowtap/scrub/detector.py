"""Finding entities in one value, with the recognizers its gates select.

Cheapest first: the pre-screen (shadowtap.scrub.gates) turns away most values;
each configured entity's recognizer runs only when its gate matches; phone numbers are
found by shape (shadowtap.scrub.phones); with ``scrub_nlp_model``, Presidio's
AnalyzerEngine looks at free text last. Where findings overlap, the best one wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from shadowtap.errors import ScrubError
from shadowtap.scrub.entities import (
    DEFAULT_THRESHOLD,
    DEFAULT_THRESHOLDS,
    KNOWN,
    Entity,
    Finding,
)
from shadowtap.scrub.gates import GATES, PRESCREEN
from shadowtap.scrub.phones import PHONE_SCORE, PhoneFinder
from shadowtap.scrub.recognizers import (
    Recognize,
    nlp_engine,
    offline_tldextract,
    recognizer,
)

_PHONE = Entity.PHONE_NUMBER.value


class Detector:
    """Finds entities in one value; built once (recognizers are compiled here)."""

    def __init__(
        self,
        entities: Iterable[str],
        thresholds: Mapping[str, float],
        phone_regions: Sequence[str],
        nlp_model: str,
    ) -> None:
        offline_tldextract()
        self.entities = tuple(entities)
        self.thresholds = {**DEFAULT_THRESHOLDS, **thresholds}
        self.phone_regions = tuple(phone_regions)
        self._phone_finder = PhoneFinder(self.phone_regions)  # unknown regions fail here
        self._recognizers: list[tuple[str, Callable[[str], bool], Recognize]] = []
        for name in self.entities:
            if name == _PHONE:
                continue
            if name in KNOWN:
                entity = Entity(name)
                self._recognizers.append((entity.value, GATES[entity], recognizer(entity)))
            elif not nlp_model:
                raise ScrubError(
                    f"scrub entity {name!r} has no pattern recognizer here; known: "
                    f"{', '.join(sorted(e.value for e in Entity))} (others need "
                    "scrub_nlp_model)"
                )
        self._phones = _PHONE in self.entities
        self._phones_scored = self.thresholds.get(_PHONE, DEFAULT_THRESHOLD) <= PHONE_SCORE
        self._nlp: Any = None
        self._nlp_entities: list[str] = []
        if nlp_model:
            self._nlp, self._nlp_entities = nlp_engine(nlp_model, self.entities)

    @property
    def uses_nlp(self) -> bool:
        """Whether a language model reads free text: then every text is analyzed."""
        return self._nlp is not None

    def find(self, text: str, phone_hint: bool = False) -> list[Finding]:
        """Entities in ``text`` above their thresholds, overlaps resolved (best first)."""
        if not PRESCREEN.search(text) and not (phone_hint and self._phones):
            return self._find_nlp(text, [])
        found: list[Finding] = []
        for entity, gate, run in self._recognizers:
            if gate(text):
                threshold = self.thresholds.get(entity, DEFAULT_THRESHOLD)
                for start, end, score in run(text):
                    if score >= threshold:
                        found.append(Finding(start, end, entity, score))
        if self._phones and self._phones_scored:
            found.extend(
                [
                    Finding(start, end, _PHONE, PHONE_SCORE)
                    for start, end in self._phone_finder.spans(text, phone_hint, found)
                ]
            )
        return self._find_nlp(text, found)

    def _find_nlp(self, text: str, found: list[Finding]) -> list[Finding]:
        if self._nlp is not None and any(c.isalpha() for c in text) and " " in text:
            for r in self._nlp.analyze(text=text, language="en", entities=self._nlp_entities):
                if r.score >= self.thresholds.get(r.entity_type, DEFAULT_THRESHOLD):
                    found.append(Finding(r.start, r.end, r.entity_type, r.score))
        if len(found) < 2:
            return found
        found.sort(key=lambda f: (-f.score, f.start - f.end))
        kept: list[Finding] = []
        for f in found:
            if all(f.end <= k.start or f.start >= k.end for k in kept):
                kept.append(f)
        return kept
