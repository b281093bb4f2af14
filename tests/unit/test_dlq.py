"""The DLQ headers contract: what writers put in and readers get back, whatever else is there."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadowtap import dlq

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
letters = st.builds(
    dlq.DeadLetter,
    stage=st.sampled_from([dlq.PROCESSOR, dlq.REPLAYER]),
    reason=text,
    error=st.text(st.characters(exclude_categories=("Cs",)), max_size=dlq.ERROR_LIMIT),
    source_topic=text,
    source_partition=st.integers(0, 10_000),
    source_offset=st.integers(0, 2**62),
    target=text,
    group=text,
    attempts=st.integers(0, 100),
)


@given(letters)
def test_what_is_written_is_read_back(letter: dlq.DeadLetter) -> None:
    read = dlq.parse(dlq.headers(letter))
    if letter.stage == dlq.PROCESSOR:  # a processor record has no target, group or attempts
        letter = dataclasses.replace(letter, target="", group="", attempts=0)
    assert read == letter


def test_errors_are_cut_at_the_limit_and_bad_text_is_replaced() -> None:
    letter = dlq.DeadLetter(dlq.PROCESSOR, "r", "é" * 5000 + "\udcff", "t", 0, 0)
    error = dict(dlq.headers(letter))[dlq.ERROR]
    assert error.decode() == "é" * dlq.ERROR_LIMIT


def test_unknown_duplicate_missing_and_garbled_headers() -> None:
    read = dlq.parse(
        [
            ("traceparent", b"00-abc"),
            (dlq.REASON, b"connect"),
            (dlq.REASON, b"second"),
            (dlq.STAGE, None),
            (dlq.SOURCE_PARTITION, b"not a number"),
            (dlq.ATTEMPTS, b"\xff"),
            ("shadowtap-dlq-something-new", b"x"),
        ]
    )
    assert read == dlq.DeadLetter("", "connect", "", "", -1, -1)
    assert dlq.parse(None) == dlq.parse([]) == dlq.DeadLetter("", "", "", "", -1, -1)


@pytest.mark.parametrize(
    ("topic", "partition", "offset"), [("shadowtap.dlq", 0, 0), ("a-b_c.d", 11, 2**40)]
)
def test_coordinates_round_trip(topic: str, partition: int, offset: int) -> None:
    text_ = dlq.coordinates(topic, partition, offset)
    assert dlq.parse_coordinates(text_) == (topic, partition, offset)


@pytest.mark.parametrize("bad", ["", "1:2", "t:x:1", ":1:2"])
def test_bad_coordinates(bad: str) -> None:
    with pytest.raises(ValueError):
        dlq.parse_coordinates(bad)


def test_the_contract_imports_no_stage() -> None:
    code = (
        "import sys, shadowtap.dlq\n"
        "print(sorted(m for m in sys.modules if m.startswith('shadowtap.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['shadowtap.dlq']"


@given(st.lists(st.tuples(text, st.none() | st.binary(max_size=20) | text), max_size=12))
def test_any_headers_parse(raw: list[tuple[str, bytes | str | None]]) -> None:
    assert isinstance(dlq.parse(raw), dlq.DeadLetter)
