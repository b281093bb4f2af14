"""Learned noise follows Diffy's JoinedDifferences: raw vs noise, relative and absolute."""

from __future__ import annotations

import pytest

from shadowtap.diff.learned import judge


@pytest.mark.parametrize(
    ("raw", "noise", "total", "regression"),
    [
        (100, 0, 1000, True),  # only the candidate differs
        (100, 100, 1000, False),  # the baselines differ as much: noise
        (100, 90, 1000, False),  # relative 5.3 % ≤ 20
        (100, 60, 1000, True),  # relative 25 % > 20, absolute 4 % > 0.03
        (1, 0, 10_000, False),  # absolute 0.01 % ≤ 0.03
        (5, 0, 10_000, True),  # absolute 0.05 % > 0.03
        (50, 100, 1000, False),  # fewer than the noise
        (0, 0, 1000, False),
    ],
)
def test_verdicts(raw: int, noise: int, total: int, regression: bool) -> None:
    assert judge(raw, noise, total, relative=20, absolute=0.03).regression is regression


def test_figures_are_percentages() -> None:
    j = judge(100, 60, 1000, relative=20, absolute=0.03)
    assert (j.relative, j.absolute) == (25.0, 4.0)
