"""Learned noise (three-way mode): is a field's candidate difference beyond the baselines'?

Two baselines, A and B, run the same version on the same requests; whatever differs between
them is noise. Per endpoint and field, ``raw`` counts the records where the candidate
differed from A and ``noise`` those where B differed from A. As in Diffy
(``JoinedDifferences``), the field is a regression when all three hold:

- ``raw > noise``;
- relative difference ``|raw - noise| / (raw + noise) × 100 > relative`` (default 20);
- absolute difference ``|raw - noise| / requests × 100 > absolute`` (default 0.03: percent
  of the endpoint's compared requests).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Judgement:
    regression: bool
    relative: float  # percent
    absolute: float  # percent of compared requests


def judge(raw: int, noise: int, total: int, *, relative: float, absolute: float) -> Judgement:
    """Diffy's verdict on one field of one endpoint."""
    gap = abs(raw - noise)
    rel = gap / (raw + noise) * 100 if raw + noise else 0.0
    absolute_pct = gap / total * 100 if total else 0.0
    return Judgement(raw > noise and rel > relative and absolute_pct > absolute, rel, absolute_pct)
