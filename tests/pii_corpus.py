"""A PII corpus: realistic requests with planted personal data, for scrubber checks.

``generate(n, seed)`` returns ``Sample``s: an envelope (JSON, form, plain-text, query, path
and header payloads), the values planted in it, and the ordinary values it holds. Planted
values come in two kinds: valid ones, and "almost valid" ones a validating recognizer
misses but that are still someone's data (phone numbers with unassigned area codes or from
countries outside the configured regions, card numbers that fail Luhn, IBANs with bad check
digits, e-mails under ``.internal``/``.corp``/``.local``, IPv6 short forms, SSNs outside the
issued ranges, unsigned JWTs, truncated API keys). They sit under phone-like names, under
neutral names, in free text, in query strings, in forms and in nested arrays.

Ordinary values are what a scrubber must leave alone although they have digits, dots,
dashes, colons or an ``@``: order ids, amounts, dates, timestamps, versions, UUIDs, SKUs,
barcodes, tracking numbers, postcodes, coordinates, numbers under names that merely contain
``tel`` or ``cell`` (``hotel``, ``cancelled``), and sentences made of them. Plain words are
not counted: they cannot wake the scrubber.

``leaks(encoded_output, planted)`` lists planted values still present (as raw bytes,
URL-encoded, digits only, or inside base64 bodies); ``ordinary_changes(before, after,
sample)`` counts ordinary values per category and lists the ones the scrubber altered.
Used by unit and integration tests and bench/scrub.py.
"""

from __future__ import annotations

import base64
import random
import string
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import orjson

from shadowtap.envelope import Envelope

FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
LAST = ["smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "moore", "taylor"]
DOMAINS = ["gmail.com", "corp.example.org", "mail.co.uk", "outlook.de", "yahoo.fr", "acme.io"]
CITIES = ["Berlin", "Lyon", "Austin", "Leeds", "Porto", "Osaka", "Denver", "Madrid"]
PRODUCTS = ["Trail Shoe", "Rain Jacket", "Coffee Grinder", "Desk Lamp", "Yoga Mat", "Backpack"]
STATUSES = ["pending", "paid", "shipped", "cancelled", "refunded"]
# Too short to search for in a whole record (a 3-digit CVV occurs by chance): checked by field.
UNSEARCHABLE = frozenset({"CVV"})
US_AREAS = ["212", "415", "617", "312", "206", "303", "512", "646", "718", "972"]
# NANP area codes that are not assigned, so phonenumbers calls their numbers invalid (issue 9).
UNASSIGNED_AREAS = ["373", "459", "961", "286", "383", "452", "476", "538", "553", "592", "624"]
# Private-use and reserved top-level domains tldextract does not know.
PRIVATE_TLDS = ["internal", "corp", "local", "lan", "intranet", "localdomain", "test", "home"]
# Names under which a phone number sits, in the spellings APIs use.
PHONE_NAMES = [
    "phone",
    "tel",
    "mobile",
    "fax",
    "msisdn",
    "cell",
    "phoneNumber",
    "mobile_phone",
    "fax-number",
    "cellPhone",
    "MSISDN",
    "phone2",
    "telNo",
    "homePhone",
    "Telephone",
]
# 4-part dotted versions that are also valid IPv4 literals: no scrubber can tell them from an
# address, and ours fails closed. Counted apart from the ordinary-values bar.
AMBIGUOUS = "ambiguous: version that is a valid IPv4"


@dataclass
class Sample:
    envelope: Envelope
    planted: list[tuple[str, str]] = field(default_factory=list)
    ordinary: dict[str, str] = field(default_factory=dict)  # value as text -> category


def luhn_complete(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _iban_check(country: str, bban: str) -> int:
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return 98 - int(numeric) % 97


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.planted: list[tuple[str, str]] = []
        self.ordinary: dict[str, str] = {}

    def plant(self, entity: str, value: str) -> str:
        self.planted.append((entity, value))
        return value

    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def hexs(self, n: int) -> str:
        return "".join(self.r.choice("0123456789abcdef") for _ in range(n))

    def email(self) -> str:
        r = self.r
        local = f"{r.choice(FIRST)}.{r.choice(LAST)}{r.randint(1, 9999)}"
        return self.plant("EMAIL_ADDRESS", f"{local}@{r.choice(DOMAINS)}")

    def phone(self) -> str:
        r = self.r
        kind = r.randrange(5)
        if kind == 3:
            value = f"+44 20 7946 0{self.digits(3)}"
        elif kind == 4:
            value = f"+49 30 {r.randint(2, 9)}{self.digits(7)}"
        else:
            area = r.choice(US_AREAS)
            exch = f"{r.randint(2, 9)}{r.randint(0, 9)}{r.randint(1, 9)}"
            if exch[1:] == "11":
                exch = exch[0] + "21"
            line = self.digits(4)
            value = [
                f"+1 {area}-{exch}-{line}",
                f"({area}) {exch}-{line}",
                f"{area}.{exch}.{line}",
            ][kind]
        return self.plant("PHONE_NUMBER", value)

    def card(self) -> str:
        r = self.r
        prefix = r.choice(["4", "51", "52", "55", "4532", "4916"])
        number = luhn_complete(prefix + self.digits(15 - len(prefix)))
        layout = r.randrange(3)
        if layout == 0:
            value = " ".join(number[i : i + 4] for i in range(0, 16, 4))
        elif layout == 1:
            value = "-".join(number[i : i + 4] for i in range(0, 16, 4))
        else:
            value = number
        return self.plant("CREDIT_CARD", value)

    def iban(self) -> str:
        r = self.r
        country, length = r.choice([("DE", 18), ("FR", 23), ("NL", 14), ("ES", 20)])
        bban = self.digits(length)
        if country == "NL":
            bban = "".join(r.choice(string.ascii_uppercase) for _ in range(4)) + self.digits(10)
        compact = f"{country}{_iban_check(country, bban):02d}{bban}"
        value = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
        return self.plant("IBAN_CODE", value if r.random() < 0.5 else compact)

    def ssn(self) -> str:
        r = self.r
        area = r.choice([r.randint(100, 665), r.randint(667, 899)])
        return self.plant("US_SSN", f"{area:03d}-{r.randint(10, 99):02d}-{r.randint(1000, 9999)}")

    def ip(self) -> str:
        r = self.r
        if r.random() < 0.2:
            value = "2001:db8:" + ":".join(f"{r.randint(1, 0xFFFF):x}" for _ in range(3)) + "::1"
        else:
            value = (
                f"{r.randint(11, 191)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
            )
        return self.plant("IP_ADDRESS", value)

    def jwt(self) -> str:
        claims = {"sub": str(self.r.randint(10**6, 10**7)), "name": self.r.choice(FIRST), "iat": 1}
        value = ".".join(
            [
                _b64(b'{"alg":"HS256","typ":"JWT"}'),
                _b64(orjson.dumps(claims)),
                _b64(self.r.randbytes(32)),
            ]
        )
        return self.plant("JWT", value)

    def api_key(self) -> str:
        r = self.r
        alnum = string.ascii_letters + string.digits
        kind = r.randrange(3)
        if kind == 0:
            value = "sk_live_" + "".join(r.choice(alnum) for _ in range(24))
        elif kind == 1:
            value = "AKIA" + "".join(
                r.choice(string.ascii_uppercase + string.digits) for _ in range(16)
            )
        else:
            value = "ghp_" + "".join(r.choice(alnum) for _ in range(36))
        return self.plant("API_KEY", value)

    def password(self) -> str:
        alnum = string.ascii_letters + string.digits + "!#%^*"
        return self.plant("PASSWORD", "".join(self.r.choice(alnum) for _ in range(14)))

    # -- almost valid: a validating recognizer misses these, but they are someone's data -----

    def phone_almost(self) -> str:
        """Possible but not valid, or valid only outside the configured regions."""
        r = self.r
        kind = r.randrange(10)
        if kind < 6:  # unassigned NANP area code, in the layouts people write
            area, exch, line = (
                r.choice(UNASSIGNED_AREAS),
                f"{r.randint(2, 9)}{self.digits(2)}",
                self.digits(4),
            )
            value = [
                f"+1 {area}-{exch}-{line}",
                f"({area}) {exch}-{line}",
                f"+1 ({area}) {exch} {line}",
                f"{area}.{exch}.{line}",
                f"{area}-{exch}-{line}",
                f"+1{area}{exch}{line}",
            ][kind]
        elif kind == 6:  # another country, international format
            value = r.choice(
                [
                    f"+81 {r.randint(1, 9)}-{self.digits(4)}-{self.digits(4)}",
                    f"+91 {r.randint(6, 9)}{self.digits(4)} {self.digits(5)}",
                    f"+55 {r.randint(11, 99)} 9{self.digits(4)}-{self.digits(4)}",
                    f"+61 4{self.digits(2)} {self.digits(3)} {self.digits(3)}",
                    f"+34 6{self.digits(2)} {self.digits(2)} {self.digits(2)} {self.digits(2)}",
                    f"+27 {r.randint(60, 89)} {self.digits(3)} {self.digits(4)}",
                ]
            )
        elif kind == 7:  # GB national format, any digits
            value = r.choice(
                [
                    f"020 {self.digits(4)} {self.digits(4)}",
                    f"07{self.digits(3)} {self.digits(6)}",
                    f"0161 {self.digits(3)} {self.digits(4)}",
                ]
            )
        elif kind == 8:  # DE national format, any digits
            value = r.choice(
                [
                    f"030 {r.randint(1, 9)}{self.digits(7)}",
                    f"015{r.randint(1, 9)} {self.digits(8)}",
                    f"(089) {r.randint(1, 9)}{self.digits(6)}",
                    f"0049 30 {r.randint(1, 9)}{self.digits(6)}",
                ]
            )
        else:  # FR national format, any digits
            groups = [f"0{r.randint(1, 9)}", *(self.digits(2) for _ in range(4))]
            value = r.choice([" ", "."]).join(groups)
        return self.plant("PHONE_NUMBER", value)

    def phone_bare(self) -> str:
        """Digits only, or a local number: a phone only because of the name it sits under."""
        r = self.r
        kind = r.randrange(3)
        if kind == 0:
            value = f"{r.choice(UNASSIGNED_AREAS)}{r.randint(2, 9)}{self.digits(6)}"
        elif kind == 1:
            value = f"447{self.digits(9)}"
        else:
            value = f"{r.randint(2, 9)}{self.digits(2)}-{self.digits(4)}"
        return self.plant("PHONE_NUMBER", value)

    def card_almost(self) -> str:
        """A card number with one digit wrong: the Luhn check fails."""
        r = self.r
        network = r.choice(["4", "4532", "51", "55", "2221", "2720", "6011", "34", "37"])
        length = 15 if network in ("34", "37") else 16
        number = luhn_complete(network + self.digits(length - 1 - len(network)))
        number = number[:-1] + str((int(number[-1]) + r.randint(1, 9)) % 10)
        groups = (4, 6, 5) if length == 15 else (4, 4, 4, 4)
        parts, at = [], 0
        for g in groups:
            parts.append(number[at : at + g])
            at += g
        value = r.choice([" ", "-", ""]).join(parts)
        return self.plant("CREDIT_CARD", value)

    def iban_almost(self) -> str:
        """An IBAN in its country's exact format with wrong check digits."""
        r = self.r
        country, length = r.choice([("DE", 18), ("FR", 23), ("ES", 20), ("IT", 23), ("GB", 18)])
        bban = self.digits(length)
        if country == "GB":
            bban = "".join(r.choice(string.ascii_uppercase) for _ in range(4)) + self.digits(14)
        elif country == "IT":
            bban = r.choice(string.ascii_uppercase) + self.digits(22)
        valid = _iban_check(country, bban)
        check = r.choice([c for c in range(2, 99) if c != valid])
        compact = f"{country}{check:02d}{bban}"
        spaced = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
        return self.plant("IBAN_CODE", spaced if r.random() < 0.5 else compact)

    def email_almost(self) -> str:
        """An address under a private or reserved top-level domain."""
        r = self.r
        local = f"{r.choice(FIRST)}.{r.choice(LAST)}{r.randint(1, 999)}"
        host = r.choice(["mail", "ldap", "corp", "hr", "build", "vpn"])
        return self.plant("EMAIL_ADDRESS", f"{local}@{host}.{r.choice(PRIVATE_TLDS)}")

    def ipv6_short(self) -> str:
        """IPv6 in compressed form."""
        r = self.r
        value = r.choice(
            [
                f"fe80::{self.hexs(4)}:{self.hexs(4)}",
                f"2001:db8::{self.hexs(4)}",
                f"2001:db8:{self.hexs(3)}::{self.hexs(2)}",
                f"fd{self.hexs(2)}:{self.hexs(4)}::{r.randint(1, 9)}",
                f"::ffff:{r.randint(11, 191)}.{r.randint(0, 255)}.{r.randint(0, 255)}.7",
                f"fe80::{self.hexs(3)}%eth{r.randint(0, 3)}",
            ]
        )
        return self.plant("IP_ADDRESS", value)

    def ssn_almost(self) -> str:
        """SSN-shaped, outside the issued ranges (never-issued area, zero group or serial)."""
        r = self.r
        area, group, serial = (
            f"{r.randint(100, 899):03d}",
            f"{r.randint(1, 99):02d}",
            self.digits(4),
        )
        kind = r.randrange(5)
        if kind == 0:
            area = "000"
        elif kind == 1:
            area = "666"
        elif kind == 2:
            area = f"9{self.digits(2)}"
        elif kind == 3:
            group = "00"
        else:
            serial = "0000"
        return self.plant("US_SSN", r.choice(["-", " "]).join((area, group, serial)))

    def jwt_unsigned(self) -> str:
        """An unsecured JWT (``alg: none``): empty signature."""
        claims = {"sub": self.digits(7), "email_verified": True, "iat": self.r.randint(1, 10**9)}
        header = _b64(b'{"alg":"none","typ":"JWT"}')
        return self.plant("JWT", f"{header}.{_b64(orjson.dumps(claims))}.")

    def api_key_almost(self) -> str:
        """Keys of other kinds or lengths than the textbook ones."""
        r = self.r
        alnum = string.ascii_letters + string.digits
        upper = string.ascii_uppercase + string.digits
        value = r.choice(
            [
                "sk_test_" + "".join(r.choice(alnum) for _ in range(r.randint(12, 20))),
                "rk_live_" + "".join(r.choice(alnum) for _ in range(24)),
                "ASIA" + "".join(r.choice(upper) for _ in range(16)),
                "github_pat_" + "".join(r.choice(alnum + "_") for _ in range(40)),
                "xoxb-" + self.digits(10) + "-" + "".join(r.choice(alnum) for _ in range(20)),
            ]
        )
        return self.plant("API_KEY", value)

    def almost(self) -> str:
        """One almost-valid value of any entity."""
        make: Callable[[], str] = self.r.choice(
            [
                self.phone_almost,
                self.phone_almost,
                self.card_almost,
                self.iban_almost,
                self.email_almost,
                self.ipv6_short,
                self.ssn_almost,
                self.jwt_unsigned,
                self.api_key_almost,
            ]
        )
        return make()

    def almost_text(self) -> str:
        """A sentence holding almost-valid values."""
        r = self.r
        return r.choice(
            [
                f"Customer called from {self.phone_almost()} about order "
                f"{self.keep('order id', self.order_id())}; reply to {self.email_almost()}.",
                f"Card {self.card_almost()} was declined twice, refund to {self.iban_almost()}.",
                f"Login from {self.ipv6_short()} with SSN {self.ssn_almost()} on file.",
                f"Fax the form to {self.phone_almost()} or {self.phone_almost()} before Friday.",
                f"debug: token={self.jwt_unsigned()} key={self.api_key_almost()}",
            ]
        )

    # -- ordinary values: digits, dots, dashes and colons that are nobody's data -------------

    def keep(self, category: str, value: Any) -> Any:
        """Record an ordinary value (JSON numbers as their text) and hand it back."""
        self.ordinary[str(value)] = category
        return value

    def order_id(self) -> str:
        r = self.r
        return r.choice(
            [
                f"ORD-{r.randint(2020, 2026)}-{r.randint(1, 999999):06d}",
                f"#{r.randint(100000, 999999)}",
                f"{r.randint(100, 999)}-{self.digits(7)}-{self.digits(7)}",  # Amazon-style
                f"PO-45{self.digits(8)}",
                f"INV-{r.randint(2020, 2026)}-{r.randint(1, 99999):05d}",
                f"R{self.digits(9)}",
            ]
        )

    def ordinary_value(self) -> tuple[str, Any]:
        """One ordinary value and its category."""
        r = self.r
        category, make = r.choice(_ORDINARY)
        return category, make(self, r)

    def ordinary_text(self) -> str:
        r = self.r
        text = r.choice(
            [
                f"Order {self.order_id()} shipped {_date(self, r)} via UPS {_tracking(self, r)}, "
                f"{r.randint(1, 9)} items, total EUR {_amount(self, r)}.",
                f"Release {_version(self, r)} rolled out at {_timestamp(self, r)} to "
                f"{r.randint(2, 40)}% of users (build {self.digits(6)}).",
                f"Deliver between {r.randint(8, 11)}:00 and {r.randint(12, 18)}:30, gate "
                f"B{r.randint(1, 60)}, room {r.randint(100, 1299)}, ext. {self.digits(4)}.",
                f"Batch {uuid.UUID(int=r.getrandbits(128))} processed {r.randint(1000, 99999)} "
                f"rows in {r.randint(1, 59)}m {r.randint(1, 59)}s ({_amount(self, r)} MB).",
                f"Invoice {self.order_id()} dated {_date(self, r)} is due {_date(self, r)}; "
                f"ref {_sku(self, r)}, EAN {_ean(self, r)}.",
            ]
        )
        self.keep("free text", text)
        return text

    def clean_item(self) -> dict[str, Any]:
        r = self.r
        return {
            "sku": f"SKU-{r.randint(10000, 99999)}",
            "name": r.choice(PRODUCTS),
            "qty": r.randint(1, 5),
            "price": round(r.uniform(3, 300), 2),
            "currency": r.choice(["EUR", "USD", "GBP"]),
            "tags": r.sample(["sale", "new", "eco", "gift", "bulk"], 2),
        }


# Ordinary value makers, one per kind of value real traffic is full of.
def _amount(g: _Gen, r: random.Random) -> str:
    whole = r.randint(0, 99999)
    return r.choice(
        [
            f"{whole}.{r.randint(0, 99):02d}",
            f"{whole:,}.{r.randint(0, 99):02d}",
            f"{whole:,}.{r.randint(0, 99):02d}".replace(",", "_")
            .replace(".", ",")
            .replace("_", "."),
            f"-{r.randint(1, 999)}.{r.randint(0, 99):02d}",
            f"0.{g.digits(8)}",  # crypto amounts, rates
        ]
    )


def _date(g: _Gen, r: random.Random) -> str:
    y, m, d = r.randint(2019, 2027), r.randint(1, 12), r.randint(1, 28)
    return r.choice(
        [
            f"{y}-{m:02d}-{d:02d}",
            f"{d:02d}.{m:02d}.{y}",
            f"{m:02d}/{d:02d}/{y}",
            f"{y}/{m:02d}/{d:02d}",
            f"{y}{m:02d}{d:02d}",
        ]
    )


def _timestamp(g: _Gen, r: random.Random) -> Any:
    y, m, d = r.randint(2019, 2027), r.randint(1, 12), r.randint(1, 28)
    hh, mm, ss = r.randint(0, 23), r.randint(0, 59), r.randint(0, 59)
    return r.choice(
        [
            f"{y}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z",
            f"{y}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{g.digits(3)}+01:00",
            f"{y}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}",  # SQL
            f"{y}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}",
            r.randint(1_500_000_000, 1_900_000_000),  # epoch seconds
            r.randint(1_500_000_000_000, 1_900_000_000_000),  # epoch milliseconds
            str(r.randint(1_500_000_000, 1_900_000_000)),
            f"{hh:02d}:{mm:02d}:{ss:02d}",
        ]
    )


def _version(g: _Gen, r: random.Random) -> str:
    a, b, c = r.randint(0, 30), r.randint(0, 40), r.randint(0, 300)
    return r.choice(
        [
            f"{a}.{b}.{c}",
            f"v{a}.{b}.{c}",
            f"{a}.{b}.{c}-beta.{r.randint(1, 9)}",
            f"{a}.{b}.{c}+build.{g.digits(4)}",
            f"{r.randint(90, 130)}.0.{r.randint(4000, 6999)}.{r.randint(1, 300)}",  # browsers
            f"10.0.{r.randint(10000, 22631)}.{r.randint(256, 4000)}",  # Windows builds
            f"^{a}.{b}.{c}",
        ]
    )


def _ip_like_version(g: _Gen, r: random.Random) -> str:
    return f"{r.randint(1, 20)}.{r.randint(0, 20)}.{r.randint(0, 20)}.{r.randint(0, 255)}"


def _ident(g: _Gen, r: random.Random) -> str:
    return r.choice(
        [
            str(uuid.UUID(int=r.getrandbits(128))),
            g.hexs(24),  # Mongo ObjectId
            g.hexs(16),
            g.hexs(32),
            g.hexs(40),  # git SHA
            "01" + "".join(r.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(24)),
            f"req_{g.hexs(12)}",
        ]
    )


def _number_id(g: _Gen, r: random.Random) -> Any:
    return r.choice(
        [
            r.randint(1, 9_999_999_999),
            str(r.randint(100_000, 99_999_999)),
            r.randint(10**17, 2 * 10**18),  # snowflake ids
            str(r.randint(10**17, 2 * 10**18)),
        ]
    )


def _sku(g: _Gen, r: random.Random) -> str:
    return r.choice(
        [
            f"SKU-{r.randint(10000, 999999)}",
            "-".join(r.choice(part) for part in (["TS", "HD"], ["BLK", "NVY"], ["S", "XL"])),
            f"{r.choice(string.ascii_uppercase)}{r.choice(string.ascii_uppercase)}-{g.digits(4)}-"
            f"{r.choice(string.ascii_uppercase)}{r.choice(string.ascii_uppercase)}",
            "B0" + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(8)),
        ]
    )


def _ean(g: _Gen, r: random.Random) -> str:
    body = r.choice(["400", "401", "402", "300", "301", "500", "501", "450", "490", "0", "8"])
    body += g.digits(12 - len(body))
    weights = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - weights % 10) % 10)


def _barcode(g: _Gen, r: random.Random) -> str:
    kind = r.randrange(3)
    if kind == 0:
        return _ean(g, r)
    if kind == 1:
        return "0" + _ean(g, r)  # GTIN-14
    isbn = "978" + g.digits(9)
    check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(isbn)) % 10) % 10
    return f"{isbn[:3]}-{isbn[3]}-{isbn[4:6]}-{isbn[6:]}-{check}"


def _tracking(g: _Gen, r: random.Random) -> str:
    return r.choice(
        [
            "1Z" + "".join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
            "9400 " + " ".join(g.digits(4) for _ in range(4)) + " " + g.digits(2),  # USPS
            f"{g.digits(4)} {g.digits(4)} {g.digits(4)}",  # FedEx
            "JD" + g.digits(18),  # DHL
        ]
    )


def _postcode(g: _Gen, r: random.Random) -> str:
    return r.choice(
        [
            f"{r.randint(10000, 99999)}",
            f"{r.randint(10000, 99999)}-{g.digits(4)}",  # ZIP+4
            f"SW{r.randint(1, 9)}A {r.randint(1, 9)}AA",
            f"D-{r.randint(10000, 99999)}",
        ]
    )


def _geo(g: _Gen, r: random.Random) -> Any:
    lat, lon = r.uniform(-89, 89), r.uniform(-179, 179)
    return r.choice(
        [
            round(lat, 6),
            f"{lat:.6f}",
            f"{lat:.4f},{lon:.4f}",
            f"{lat:+.6f}",
            f"{lat:.5f}, {lon:.5f}",
        ]
    )


def _measure(g: _Gen, r: random.Random) -> str:
    return r.choice(
        [
            f"{r.randint(0, 100)}.{r.randint(0, 9)}%",
            f"{r.choice([1280, 1920, 2560, 3840])}x{r.choice([720, 1080, 1440, 2160])}",
            f"{r.randint(1, 99)}.{r.randint(0, 99)} kg",
            f"{r.randint(1, 16)}:{r.randint(1, 16)}",
            f"{r.randint(100, 9999)} ms",
            f"PT{r.randint(1, 12)}H{r.randint(1, 59)}M",
        ]
    )


def _not_a_phone(g: _Gen, r: random.Random) -> str:
    return r.choice(
        [
            f"Room {r.randint(100, 1299)}",
            f"ext. {g.digits(4)}",
            f"+{r.randint(1, 50)}%",
            f"{r.randint(1, 3)}-{r.randint(4, 9)} business days",
            f"Flight LH {r.randint(100, 9999)}",
            f"{r.randint(1, 9)} of {r.randint(10, 99)}",
            f"{g.digits(2)}-{g.digits(2)}-{g.digits(2)}",  # UK sort code
            f"{g.digits(3)} {g.digits(3)}",
        ]
    )


def _at_sign(g: _Gen, r: random.Random) -> str:
    return r.choice(
        [
            f"react@{r.randint(15, 19)}.{r.randint(0, 9)}.{r.randint(0, 9)}",
            f"logo@{r.randint(2, 3)}x.png",
            f"@babel/core@^7.{r.randint(0, 24)}.0",
            f"nginx@sha256:{g.hexs(64)}",
            f"icon-{r.randint(16, 512)}@2x.webp",
        ]
    )


def _near_phone_name(g: _Gen, r: random.Random) -> str:
    """Numbers under names that contain, but are not, phone words (hotel, cancelled…)."""
    return g.digits(r.randint(7, 11))


def _phone_named_time(g: _Gen, r: random.Random) -> Any:
    return r.randint(1_500_000_000, 1_900_000_000)


_ORDINARY: list[tuple[str, Callable[[_Gen, random.Random], Any]]] = [
    ("order id", lambda g, r: g.order_id()),
    ("amount", _amount),
    ("date", _date),
    ("timestamp", _timestamp),
    ("timestamp", _timestamp),
    ("version", _version),
    ("uuid/hex id", _ident),
    ("numeric id", _number_id),
    ("sku", _sku),
    ("barcode/isbn", _barcode),
    ("tracking number", _tracking),
    ("postcode", _postcode),
    ("coordinates", _geo),
    ("measure", _measure),
    ("not a phone", _not_a_phone),
    ("@ but no e-mail", _at_sign),
    ("near-phone name", _near_phone_name),
    ("phone-named time", _phone_named_time),
    (AMBIGUOUS, _ip_like_version),
]
_FIELD_FOR = {
    "order id": "order_ref",
    "amount": "amount",
    "date": "date",
    "timestamp": "updated",
    "version": "version",
    "uuid/hex id": "id",
    "numeric id": "external_id",
    "sku": "sku",
    "barcode/isbn": "gtin",
    "tracking number": "tracking",
    "postcode": "postcode",
    "coordinates": "geo",
    "measure": "measure",
    "not a phone": "label",
    "@ but no e-mail": "asset",
    "near-phone name": "hotelConfirmation",  # varied below
    "phone-named time": "phone_verified_at",
    AMBIGUOUS: "app_version",
}
_NEAR_PHONE_NAMES = [
    "hotel_confirmation",
    "hotelId",
    "cancelled_by",
    "telemetry_seq",
    "cellar_slot",
    "intel_ref",
    "satellite-id",
    "excellence_score_raw",
]


def _ordinary_block(g: _Gen, n: int) -> dict[str, Any]:
    """``n`` ordinary values under names that say what they are."""
    out: dict[str, Any] = {}
    for i in range(n):
        category, value = g.ordinary_value()
        name = _FIELD_FOR[category]
        if category == "near-phone name":
            name = g.r.choice(_NEAR_PHONE_NAMES)
        out[f"{name}_{i}" if name in out else name] = g.keep(category, value)
    return out


def _dense_doc(g: _Gen) -> dict[str, Any]:
    """An order with ~16 planted values of every entity (bench/scrub's dense workload)."""
    r = g.r
    return {
        "order_id": g.keep("order id", f"ORD-{r.randint(2020, 2026)}-{r.randint(1, 999999):06d}"),
        "request_uuid": g.keep("uuid/hex id", str(uuid.UUID(int=r.getrandbits(128)))),
        "created_at": g.keep(
            "timestamp",
            f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T"
            f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z",
        ),
        "status": r.choice(STATUSES),
        "customer": {
            "id": r.randint(1, 500000),
            "first_name": r.choice(FIRST).title(),
            "email": g.email(),
            "phone": g.phone(),
            "ssn": g.ssn(),
            "address": {
                "street": f"{r.randint(1, 300)} Main Street",
                "city": r.choice(CITIES),
                "zip": g.keep("postcode", f"{r.randint(10000, 99999)}"),
                "country": r.choice(["DE", "FR", "US", "GB"]),
            },
            "last_login_ip": g.ip(),
        },
        "payment": {
            "method": "card",
            "card_number": g.card(),
            "cvv": g.plant("CVV", str(r.randint(100, 999))),
            "expiry": f"{r.randint(1, 12):02d}/{r.randint(26, 31)}",
            "billing_iban": g.iban(),
        },
        "items": [g.clean_item() for _ in range(r.randint(1, 3))],
        "note": f"Please call {g.phone()} or write to {g.email()} before delivery.",
        "support_ticket": f"Card {g.card()} was charged twice, IBAN {g.iban()}.",
        "auth": {"password": g.password(), "api_key": g.api_key()},
        "integration": {"stripe": g.api_key(), "session_jwt": g.jwt()},
        "page": {"lang": "en-US", "ref": "https://shop.example/p/123?utm_source=mail"},
        "amount_cents": r.randint(100, 90000),
        "gift": r.random() < 0.3,
        "coupon": None,
    }


def _json_payload(g: _Gen) -> dict[str, Any]:
    """The dense order plus almost-valid values (phone names, neutral names, nested arrays,
    free text) and ordinary values."""
    doc = _dense_doc(g)
    r = g.r
    tel, mobile = r.sample(PHONE_NAMES[1:], 2)  # "phone" holds a valid number already
    doc["customer"].update(
        {
            tel: g.phone_almost(),
            mobile: g.phone_bare(),
            "contacts": [
                {"kind": "mobile", "value": g.phone_almost()},
                {"kind": "email", "value": g.email_almost()},
                {"kind": "phone", "numbers": [g.phone_almost(), g.phone()]},
            ],
        }
    )
    doc["payment"].update({"ref": g.card_almost(), "account": g.iban_almost()})
    doc["integration"]["debug"] = g.almost()
    doc["remarks"] = [g.almost_text(), g.ordinary_text()]
    doc["audit"] = [["reference", g.ssn_almost()], ["host", g.ipv6_short()], ["by", g.almost()]]
    doc["meta"] = _ordinary_block(g, 24)
    doc["history"] = [_ordinary_block(g, 4) for _ in range(3)]
    return doc


def dense_body(seed: int) -> tuple[bytes, list[tuple[str, str]]]:
    """A ~1.3 KB JSON order with ~16 planted values of every entity, all valid."""
    g = _Gen(seed)
    return orjson.dumps(_dense_doc(g)), g.planted


def typical_body(seed: int) -> tuple[bytes, list[tuple[str, str]]]:
    """A ~1 KB JSON order with a typical handful of PII values (e-mail, phone, card, IP)."""
    g = _Gen(seed)
    r = g.r
    doc = {
        "order_id": f"ORD-{r.randint(2020, 2026)}-{r.randint(1, 999999):06d}",
        "request_uuid": str(uuid.UUID(int=r.getrandbits(128))),
        "created_at": f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T10:00:00Z",
        "status": r.choice(STATUSES),
        "customer": {
            "id": r.randint(1, 500000),
            "first_name": r.choice(FIRST).title(),
            "email": g.email(),
            "phone": g.phone(),
            "tier": r.choice(["gold", "silver", "basic"]),
            "address": {
                "street": f"{r.randint(1, 300)} Main Street",
                "city": r.choice(CITIES),
                "zip": f"{r.randint(10000, 99999)}",
                "country": r.choice(["DE", "FR", "US", "GB"]),
            },
        },
        "payment": {"method": "card", "card_number": g.card(), "expiry": "09/28"},
        "client": {"ip": g.ip(), "lang": "en-US", "ua": "Mozilla/5.0 (X11; Linux x86_64)"},
        "items": [g.clean_item() for _ in range(3)],
        "shipping": {
            "carrier": r.choice(["DHL", "UPS", "FedEx"]),
            "days": r.randint(1, 5),
            "note": "Leave the parcel at the front door and ring twice, thank you!",
        },
        "amount_cents": r.randint(100, 90000),
        "gift": r.random() < 0.3,
        "coupon": None,
    }
    return orjson.dumps(doc), g.planted


def _form_payload(g: _Gen) -> str:
    r = g.r
    pairs = [
        ("username", r.choice(FIRST)),
        ("email", g.email()),
        ("password", g.password()),
        ("phone", g.phone()),
        (r.choice(PHONE_NAMES), g.phone_almost()),
        (r.choice(PHONE_NAMES), g.phone_bare()),
        ("city", r.choice(CITIES)),
        ("remember", "on"),
        ("comment", f"my ssn is {g.ssn()} thanks"),
        ("message", g.almost_text()),
        ("ref", g.almost()),
        *_ordinary_block(g, 8).items(),
        ("summary", g.ordinary_text()),
    ]
    return "&".join(f"{k}={quote_plus(str(v))}" for k, v in pairs)


def _text_payload(g: _Gen) -> str:
    """A support message in plain text: free text only, no names to go by."""
    return "\n".join(
        [
            f"Hi, this is {g.r.choice(FIRST).title()}.",
            g.almost_text(),
            f"My new number is {g.phone_almost()}, the old one {g.phone()}.",
            f"Mail {g.email_almost()} or {g.email()}; card {g.card_almost()} expired.",
            g.almost_text(),
        ]
    )


def _query(g: _Gen, i: int) -> str:
    r = g.r
    pairs: list[tuple[str, Any]] = [("email", g.email()), ("page", r.randint(1, 9))]
    if i % 2:
        pairs.append(("phone", g.phone_almost()))
    else:
        pairs.append(("q", f"call {g.phone_almost()}"))
    pairs += [
        ("contact", g.almost()),
        ("from", g.keep("date", _date(g, r))),
        ("v", g.keep("version", _version(g, r))),
        ("sort", "price"),
    ]
    return "&".join(f"{k}={quote_plus(str(v))}" for k, v in pairs)


def generate(n: int, seed: int = 1) -> list[Sample]:
    """``n`` requests with planted PII and ordinary values, deterministic for ``seed``."""
    out = []
    for i in range(n):
        g = _Gen(seed * 1_000_003 + i)
        r = g.r
        headers = [
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
            ("accept", "application/json"),
            ("x-request-id", g.keep("uuid/hex id", str(uuid.UUID(int=r.getrandbits(128))))),
            ("authorization", f"Bearer {g.jwt()}"),
            ("cookie", f"session={g.api_key()}; theme=dark"),
            ("x-forwarded-for", g.ip()),
            ("x-user-email", g.email()),
        ]
        if i % 4 == 1:
            headers.append(("x-msisdn", g.phone_bare()))
        query = _query(g, i)
        kind = i % 4
        if kind == 2:
            body = _form_payload(g).encode()
            headers.append(("content-type", "application/x-www-form-urlencoded"))
            path = "/login"
        elif kind == 3:
            body = _text_payload(g).encode()
            headers.append(("content-type", "text/plain; charset=utf-8"))
            path = "/support/messages"
        else:
            body = orjson.dumps(_json_payload(g))
            headers.append(("content-type", "application/json"))
            path = f"/api/orders/{g.keep('order id', g.order_id().lstrip('#'))}"
        if i % 5 == 4:
            path = f"/api/users/{quote(g.email(), safe='@')}/orders"
        elif i % 5 == 3:
            path = f"/api/contacts/{quote(g.phone_almost(), safe='+')}"
        headers.append(("content-length", str(len(body))))
        env = Envelope(
            method="POST",
            path=path,
            query=query,
            headers=headers,
            body=body,
            body_size=len(body),
            host="shop.example",
            scheme="https",
            source="checkout",
            client=g.ip(),
        )
        out.append(Sample(env, g.planted, g.ordinary))
    return out


def _needles(entity: str, value: str) -> set[str]:
    needles = {value, quote_plus(value), quote(value, safe="@"), quote(value, safe="+")}
    digits = "".join(c for c in value if c.isdigit())
    if entity in ("CREDIT_CARD", "IBAN_CODE") and len(digits) >= 12:
        needles.add(digits)
    if entity == "PHONE_NUMBER" and len(digits) >= 10:
        needles.add(digits)
    if entity == "IBAN_CODE":
        needles.add(value.replace(" ", ""))
    return needles


def searchable(encoded: bytes) -> bytes:
    """The record bytes plus its base64 bodies decoded, so nothing hides in base64."""
    doc = orjson.loads(encoded)
    parts = [encoded]
    for holder in (doc, doc.get("response") or {}):
        if holder.get("body"):
            parts.append(base64.b64decode(holder["body"]))
    return b"\n".join(parts)


def leaks(encoded: bytes, planted: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Planted values still present in an encoded output record."""
    haystack = searchable(encoded).decode("utf-8", "replace")
    return [
        (entity, value)
        for entity, value in planted
        if entity not in UNSEARCHABLE and any(n in haystack for n in _needles(entity, value))
    ]


def ordinary_changes(
    before: Envelope, after: Envelope, sample: Sample
) -> tuple[Counter[str], list[tuple[str, Any, Any]]]:
    """Ordinary values per category, and the changed ones as (category, before, after).

    Compares leaf by leaf: JSON body values, form and query values, path segments and
    header values. Also checks that a JSON body keeps its shape and types.
    """
    pairs: list[tuple[Any, Any]] = []
    ctype = before.header("content-type") or ""
    if "json" in ctype:
        _walk(orjson.loads(before.body), orjson.loads(after.body), pairs)
    elif "x-www-form-urlencoded" in ctype:
        pairs.extend(zip(_form(before.body.decode()), _form(after.body.decode()), strict=True))
    pairs.extend(zip(_form(before.query), _form(after.query), strict=True))
    segments = zip(before.path.split("/"), after.path.split("/"), strict=True)
    pairs.extend((unquote(a), unquote(b)) for a, b in segments)
    pairs.extend((a[1], b[1]) for a, b in zip(before.headers, after.headers, strict=True))
    seen: Counter[str] = Counter()
    changed: list[tuple[str, Any, Any]] = []
    for a, b in pairs:
        category = sample.ordinary.get(str(a))
        if category is not None:
            seen[category] += 1
            if a != b:
                changed.append((category, a, b))
    return seen, changed


def _form(raw: str) -> list[str]:
    return [unquote_plus(p.partition("=")[2]) for p in raw.split("&") if p]


def _walk(a: Any, b: Any, out: list[tuple[Any, Any]]) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), "JSON shape changed"
        for k in a:
            _walk(a[k], b[k], out)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), "JSON shape changed"
        for x, y in zip(a, b, strict=True):
            _walk(x, y, out)
    else:
        assert type(a) is type(b), f"JSON type changed: {a!r} -> {b!r}"
        out.append((a, b))
