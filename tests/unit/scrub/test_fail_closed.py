"""The scrubber fails closed: under a sensitive name or in a sensitive shape, a value a
validator calls invalid is still scrubbed, and ordinary lookalikes are left alone."""

from __future__ import annotations

import re
from collections import Counter
from urllib.parse import quote_plus

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shadowtap.envelope import Envelope
from shadowtap.errors import ScrubError
from shadowtap.scrub.checkdigits import is_luhn_valid
from shadowtap.scrub.field_names import is_phone_name
from shadowtap.scrub.scrubber import Scrubber
from tests.pii_corpus import PHONE_NAMES
from tests.unit.scrub.bodies import scrubbed_json

# Issue 9's leaked numbers: unassigned area codes, so phonenumbers calls them invalid.
UNASSIGNED = ("+1 373-770-2176", "(459) 968-4802", "+1 961-572-3930")


def test_the_leaked_numbers_are_not_valid_numbers() -> None:
    for number in UNASSIGNED:
        assert not phonenumbers.is_valid_number(phonenumbers.parse(number, "US")), number


@pytest.mark.parametrize("number", UNASSIGNED)
def test_invalid_phone_numbers_are_scrubbed_under_phone_names(
    scrubber: Scrubber, number: str
) -> None:
    out = scrubbed_json(scrubber, {"phone": number, "tel": number, "contact": {"phone": number}})
    assert number not in str(out)
    env = Envelope(method="GET", path="/c", query=f"phone={quote_plus(number)}&page=2")
    scrubber.scrub(env)
    assert quote_plus(number) not in env.query and env.query.endswith("&page=2")


@pytest.mark.parametrize("number", UNASSIGNED)
def test_invalid_phone_numbers_are_scrubbed_in_free_text(scrubber: Scrubber, number: str) -> None:
    out = scrubbed_json(scrubber, {"note": f"Call {number} after 6pm.", "ref": number})
    assert isinstance(out, dict) and number not in str(out)
    assert out["note"].startswith("Call ") and out["note"].endswith(" after 6pm.")


def test_phone_names_are_words_not_substrings() -> None:
    for name in (*PHONE_NAMES, "X-MSISDN", "telephone", "phonenumber", "phones", "tel_no"):
        assert is_phone_name(name), name
    for name in (
        "hotel",
        "hotelId",
        "cancelled",
        "cancelled_by",
        "telemetry",
        "telemetry_seq",
        "cellar",
        "intel",
        "excellent",
        "phonetic",
        "phone_verified_at",
        "mobileCount",
    ):
        assert not is_phone_name(name), name


def test_bare_numbers_are_phones_only_under_phone_names(scrubber: Scrubber) -> None:
    doc = {"hotel": "4599684802", "cancelled": 4599684802, "telemetry": "968-4802"}
    assert scrubbed_json(scrubber, doc) == doc
    out = scrubbed_json(
        scrubber, {"tel": "4599684802", "mobileNumber": 4599684802, "fax": "968-4802"}
    )
    assert isinstance(out, dict)
    assert out["tel"] != "4599684802" and re.fullmatch(r"\d{10}", out["tel"])
    assert isinstance(out["mobileNumber"], int) and out["mobileNumber"] != 4599684802
    assert out["fax"] != "968-4802" and re.fullmatch(r"\d{3}-\d{4}", out["fax"])
    env = Envelope(method="GET", path="/", headers=[("X-MSISDN", "447700900123")])
    scrubber.scrub(env)
    assert env.header("x-msisdn") not in (None, "447700900123")


# Values a validating recognizer misses that are still someone's data, one per kind.
ALMOST_VALID = [
    ("PHONE_NUMBER", "+1 373-770-2176"),  # unassigned area code
    ("PHONE_NUMBER", "(459) 968-4802"),
    ("PHONE_NUMBER", "459.968.4802"),
    ("PHONE_NUMBER", "+14599684802"),
    ("PHONE_NUMBER", "+81 3-1234-5678"),  # outside scrub_phone_regions
    ("PHONE_NUMBER", "+91 98765 43210"),
    ("PHONE_NUMBER", "020 7123 0000"),  # GB national format, unallocated
    ("PHONE_NUMBER", "(089) 1234567"),  # DE national format
    ("PHONE_NUMBER", "0049 30 1234567"),
    ("PHONE_NUMBER", "06.12.34.56.78"),  # FR national format
    ("CREDIT_CARD", "4532 0151 1283 0367"),  # fails Luhn
    ("CREDIT_CARD", "4532-0151-1283-0367"),
    ("CREDIT_CARD", "4532015112830367"),
    ("CREDIT_CARD", "3782 822463 10006"),
    ("CREDIT_CARD", "2221 0012 3412 3457"),
    ("IBAN_CODE", "DE88 3704 0044 0532 0130 00"),  # bad check digits
    ("IBAN_CODE", "DE88370400440532013000"),
    ("IBAN_CODE", "GB12NWBK60161331926819"),
    ("EMAIL_ADDRESS", "bob@db.internal"),
    ("EMAIL_ADDRESS", "alice.smith@hr.corp"),
    ("EMAIL_ADDRESS", "x@printer.local"),
    ("IP_ADDRESS", "::1"),
    ("IP_ADDRESS", "fe80::1"),
    ("IP_ADDRESS", "2001:db8::7334"),
    ("IP_ADDRESS", "fe80::1c2d:3e4f%eth0"),
    ("IP_ADDRESS", "::ffff:203.0.113.9"),
    ("US_SSN", "000-12-3456"),  # never-issued area
    ("US_SSN", "666-12-3456"),
    ("US_SSN", "912-34-5678"),
    ("US_SSN", "123-00-4567"),  # zero group
    ("US_SSN", "123-45-0000"),  # zero serial
    ("US_SSN", "000 12 3456"),
    ("JWT", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3In0."),  # unsigned
    ("API_KEY", "sk_test_4eC39HqLyjWD"),  # short
    ("API_KEY", "ASIAIOSFODNN7EXAMPLE"),  # AWS temporary key id
    ("API_KEY", "github_pat_11ABCDEFG0abcdefghijklmnopqrstuvwxyz"),
]


@pytest.mark.parametrize(("entity", "value"), ALMOST_VALID, ids=[v for _, v in ALMOST_VALID])
def test_almost_valid_values_are_scrubbed_under_neutral_names_and_in_free_text(
    scrubber: Scrubber, entity: str, value: str
) -> None:
    counts: Counter[str] = Counter()
    assert scrubber.value(value, "ref", counts) != value
    text = scrubber.text(f"Seen: {value}, twice.", counts)
    assert value not in text and text.startswith("Seen: ") and text.endswith(", twice.")
    env = Envelope(method="GET", path="/", query=f"q={quote_plus(value)}&page=2")
    scrubber.scrub(env)
    assert quote_plus(value) not in env.query and env.query.endswith("&page=2")
    assert counts == Counter({entity: 2})


# Ordinary values that look like one of those at a glance.
LOOKALIKES = [
    "2024-01-15 10:30:00",
    "15.01.2024",
    "94107-1234",  # ZIP+4
    "0.12345678",
    "+52.520008",
    "(0.99 MB)",
    "4008943018522",  # EAN-13 that passes Luhn
    "112-4173666-2572973",  # order number whose last 14 digits pass Luhn
    "9400 1000 0000 0000 0000 00",  # parcel number
    "978-3-16-148410-0",
    "react@18.2.0",
    "logo@2x.png",
    "Chrome/120.0.6099.130",
    "10.0.19045.2965",
    "1705312800123",
    "a1b2c3d4-0000-4f3a-9b12-123456789012",
    "10:30:15",
    "Foo::Bar",
]


@pytest.mark.parametrize("value", LOOKALIKES)
def test_ordinary_lookalikes_are_left_alone(scrubber: Scrubber, value: str) -> None:
    assert is_luhn_valid("4008943018522") and is_luhn_valid("41736662572973")
    assert scrubber.value(value, "ref", Counter()) == value
    assert scrubber.text(f"x {value} y", Counter()) == f"x {value} y"


@pytest.mark.parametrize(
    "value",
    [
        "+1 373-770-2176",
        "(459) 968-4802",
        "+81 3-1234-5678",
        "4532 0151 1283 0367",
        "3782-822463-10006",
        "DE88 3704 0044 0532 0130 00",
        "000-12-3456",
    ],
)
def test_pseudonyms_of_invalid_values_keep_their_shape(scrubber: Scrubber, value: str) -> None:
    new = scrubber.text(value, Counter())
    assert len(new) == len(value) and new != value
    for old_char, new_char in zip(value, new, strict=True):
        assert old_char.isdigit() == new_char.isdigit() and old_char.isalpha() == new_char.isalpha()
        if not old_char.isalnum():
            assert old_char == new_char
    assert scrubber.text(value, Counter()) == new  # deterministic
    assert Scrubber(key="another-key").text(value, Counter()) != new  # keyed


def test_percent_encoded_path_segments_are_scrubbed(scrubber: Scrubber) -> None:
    env = Envelope(method="GET", path="/api/contacts/06%2012%2034%2056%2078/calls")
    scrubber.scrub(env)
    assert "12%2034" not in env.path and env.path.startswith("/api/contacts/06%20")
    assert env.path.endswith("/calls")


def test_unknown_phone_regions_fail_at_start_up() -> None:
    with pytest.raises(ScrubError, match=r"scrub_phone_regions: 'XX'"):
        Scrubber(key="k", phone_regions=("US", "XX"))


_NANP_WRITTEN = st.builds(
    lambda area, exchange, line, layout: layout.format(a=area, e=exchange, l=f"{line:04d}"),
    st.integers(200, 999),
    st.integers(200, 999),
    st.integers(0, 9999),
    st.sampled_from(["+1 {a}-{e}-{l}", "({a}) {e}-{l}", "{a}.{e}.{l}", "+1{a}{e}{l}"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    number=_NANP_WRITTEN,
    before=st.sampled_from(["", "Call ", "tel: ", "(", "phone="]),
    after=st.sampled_from(["", ".", " today", ")", ", thanks"]),
)
def test_any_nanp_number_written_as_one_is_scrubbed(number: str, before: str, after: str) -> None:
    """Assigned or not: every area code and exchange, in the layouts people write."""
    scrubber = _SHARED.setdefault("scrubber", Scrubber(key="test-key"))
    text = f"{before}{number}{after}"
    out = scrubber.text(text, Counter())
    assert number not in out and "".join(c for c in number if c.isdigit())[-7:] not in out
    assert out.startswith(before) and out.endswith(after) and len(out) == len(text)


_SHARED: dict[str, Scrubber] = {}
