"""A PII corpus: realistic requests with planted personal data, for scrubber checks.

``generate(n, seed)`` returns ``Sample``s: an envelope (JSON, form, query and header payloads)
and the values planted in it. ``leaks(encoded_output, planted)`` lists planted values still
present (as raw bytes, URL-encoded, or inside base64 bodies); ``changed_clean_leaves`` counts
non-PII leaf values the scrubber altered. Used by unit and integration tests and bench/scrub.py.
"""

from __future__ import annotations

import base64
import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

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


@dataclass
class Sample:
    envelope: Envelope
    planted: list[tuple[str, str]] = field(default_factory=list)


def luhn_complete(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


class _Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.planted: list[tuple[str, str]] = []

    def plant(self, entity: str, value: str) -> str:
        self.planted.append((entity, value))
        return value

    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

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
        numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
        check = 98 - int(numeric) % 97
        compact = f"{country}{check:02d}{bban}"
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
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        claims = {"sub": str(self.r.randint(10**6, 10**7)), "name": self.r.choice(FIRST), "iat": 1}
        value = ".".join(
            [
                b64(b'{"alg":"HS256","typ":"JWT"}'),
                b64(orjson.dumps(claims)),
                b64(self.r.randbytes(32)),
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

    # -- non-PII values --------------------------------------------------------------------

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


def _json_payload(g: _Gen) -> dict[str, Any]:
    r = g.r
    return {
        "order_id": f"ORD-{r.randint(2020, 2026)}-{r.randint(1, 999999):06d}",
        "request_uuid": str(uuid.UUID(int=r.getrandbits(128))),
        "created_at": f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T"
        f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z",
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
                "zip": f"{r.randint(10000, 99999)}",
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
        ("city", r.choice(CITIES)),
        ("remember", "on"),
        ("comment", f"my ssn is {g.ssn()} thanks"),
    ]
    return "&".join(f"{k}={quote_plus(v)}" for k, v in pairs)


def generate(n: int, seed: int = 1) -> list[Sample]:
    """``n`` requests with planted PII, deterministic for ``seed``."""
    out = []
    for i in range(n):
        g = _Gen(seed * 1_000_003 + i)
        r = g.r
        headers = [
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
            ("accept", "application/json"),
            ("x-request-id", str(uuid.UUID(int=r.getrandbits(128)))),
            ("authorization", f"Bearer {g.jwt()}"),
            ("cookie", f"session={g.api_key()}; theme=dark"),
            ("x-forwarded-for", g.ip()),
            ("x-user-email", g.email()),
        ]
        query = f"email={quote_plus(g.email())}&page={r.randint(1, 9)}&sort=price&q=rain+jacket"
        if i % 3 == 2:
            body = _form_payload(g).encode()
            headers.append(("content-type", "application/x-www-form-urlencoded"))
            path = "/login"
        else:
            body = orjson.dumps(_json_payload(g))
            headers.append(("content-type", "application/json"))
            path = f"/api/orders/{r.randint(1, 99999)}"
        if i % 5 == 4:
            path = f"/api/users/{quote(g.email(), safe='@')}/orders"
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
        out.append(Sample(env, g.planted))
    return out


def _needles(entity: str, value: str) -> set[str]:
    needles = {value, quote_plus(value), quote(value, safe="@")}
    digits = "".join(c for c in value if c.isdigit())
    if entity in ("CREDIT_CARD", "IBAN_CODE") and len(digits) >= 12:
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


def changed_clean_leaves(
    before: Envelope, after: Envelope, planted: list[tuple[str, str]]
) -> tuple[int, int]:
    """(changed, total) over leaf values of body and query that hold no planted value."""
    values = [v for _, v in planted]

    def clean(leaf: Any) -> bool:
        text = str(leaf)
        return not any(v in text for v in values)

    changed = total = 0
    pairs: list[tuple[Any, Any]] = []
    if before.body[:1] == b"{":
        _walk(orjson.loads(before.body), orjson.loads(after.body), pairs)
    else:
        pairs.extend(zip(_form(before.body.decode()), _form(after.body.decode()), strict=True))
    pairs.extend(zip(_form(before.query), _form(after.query), strict=True))
    for a, b in pairs:
        if clean(a):
            total += 1
            changed += a != b
    return changed, total


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
