"""Value classes: the values every version produces anew on every call."""

from __future__ import annotations

import pytest

from shadowtap.diff.classes import classify, epoch_seconds, mask


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3f1c2a7e-1b2c-4d5e-8f90-1234567890ab", "uuid"),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "ulid"),
        ("2024-05-01T10:00:00.123+02:00", "timestamp"),
        ("2024-05-01 10:00:00Z", "timestamp"),
        ("Wed, 01 May 2024 10:00:00 GMT", "timestamp"),
        ("5f2b8c1e9a7d3f604b1c2d3e", "hex"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt"),
        ("Ann Example, Springfield", None),
        ("2024-05-01", None),
        ("short", None),
    ],
)
def test_classify(value: str, expected: str | None) -> None:
    assert classify(value) == expected


def test_mask_names_the_first_class_in_a_text() -> None:
    masked, first = mask("order 3f1c2a7e-1b2c-4d5e-8f90-1234567890ab at 2024-05-01T10:00:00Z")
    assert (masked, first) == ("order <uuid> at <timestamp>", "uuid")
    assert mask("nothing to see in here") == ("nothing to see in here", "")
    # A class value is masked only whole, not inside a longer word.
    assert mask("x3f1c2a7e1b2c4d5e8f901234567890abz")[1] == ""


def test_epoch_seconds() -> None:
    assert epoch_seconds("2024-05-01T10:00:00Z") == 1714557600
    assert epoch_seconds("2024-05-01T10:00:00") == 1714557600  # no offset: read as UTC
    assert epoch_seconds("Wed, 01 May 2024 10:00:00 GMT") == 1714557600
    assert epoch_seconds(1714557600) == 1714557600
    assert epoch_seconds(1714557600500) == 1714557600.5
    assert epoch_seconds(42) is None
    assert epoch_seconds(True) is None
    assert epoch_seconds("2024-13-45T10:00:00Z") is None
