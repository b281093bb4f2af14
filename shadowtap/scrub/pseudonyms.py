"""Pseudonyms: consistent, keyed replacements shaped like the original.

Each is drawn from a keyed HMAC-SHA256 of the original (``scrub_key``): one customer stays
one customer in staging. Each kind keeps its format so staging's validation passes (the
package docstring lists them); values replaced for their field's name keep the format
``field_shape`` sees in them, else their character classes and length.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Sequence

import orjson

from shadowtap.scrub.checkdigits import (
    iban_check_digits,
    is_luhn_valid,
    luhn_check_digit,
    only_digits,
)
from shadowtap.scrub.credentials import API_KEY_PREFIX, JWT_SHAPE
from shadowtap.scrub.entities import Entity
from shadowtap.scrub.phones import NANP, is_phone

FIELD_SHAPE = "FIELD"  # the kind of a field value that has no entity's format: shape only
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}(?: ?[0-9A-Z]{1,4}){3,8}")


class Pseudonyms:
    """Format-keeping, consistent replacements derived from a keyed HMAC."""

    def __init__(self, key: str, phone_regions: Sequence[str]) -> None:
        self._key = key.encode()
        self._regions = tuple(phone_regions)
        self._makers: dict[str, Callable[[str], str]] = {
            Entity.EMAIL_ADDRESS: self._email_address,
            Entity.CREDIT_CARD: self._credit_card,
            Entity.US_SSN: self._us_ssn,
            Entity.IBAN_CODE: self._iban_code,
            Entity.IP_ADDRESS: self._ip_address,
            Entity.PHONE_NUMBER: self._phone_number,
            Entity.JWT: self._jwt,
            Entity.API_KEY: self._api_key,
        }

    def digest(self, kind: str, value: str, n: int = 32) -> bytes:
        out = b""
        counter = 0
        while len(out) < n:
            msg = f"{kind}\x00{counter}\x00{value}".encode("utf-8", "surrogatepass")
            out += hmac.new(self._key, msg, hashlib.sha256).digest()
            counter += 1
        return out[:n]

    def hex(self, kind: str, value: str, n: int = 16) -> str:
        return self.digest(kind, value, (n + 1) // 2).hex()[:n]

    def digits(self, kind: str, value: str, n: int) -> str:
        return "".join(str(b % 10) for b in self.digest(kind, value, n))

    def shaped(self, kind: str, value: str) -> str:
        """Same length and character classes: digits stay digits, letters letters."""
        d = self.digest(kind, value, max(len(value), 1))
        out = []
        for c, b in zip(value, d, strict=False):
            if c.isdigit():
                out.append(str(b % 10))
            elif "a" <= c <= "z":
                out.append(chr(97 + b % 26))
            elif "A" <= c <= "Z":
                out.append(chr(65 + b % 26))
            elif c.isalpha():
                out.append(chr(97 + b % 26))
            else:
                out.append(c)
        return "".join(out)

    def entity(self, entity: str, value: str) -> str:
        """The pseudonym of ``value``, a ``entity``; never ``value`` itself."""
        make = self._makers.get(entity)
        result = make(value) if make is not None else self.shaped(entity, value)
        if result == value:  # astronomically rare; never hand the original back
            result = self.shaped(entity + "!", value)
        return result

    def _email_address(self, value: str) -> str:
        return f"u-{self.hex('email', value.lower(), 12)}@example.com"

    def _credit_card(self, value: str) -> str:
        n = sum(c.isdigit() for c in value)
        body = "4" + self.digits("card", only_digits(value), max(n - 2, 1))
        return _relayout(value, body + str(luhn_check_digit(body)))

    def _us_ssn(self, value: str) -> str:
        d = self.digest("ssn", only_digits(value), 6)
        area = 100 + int.from_bytes(d[:2], "big") % 566  # 100-665: a valid area number
        group = 1 + d[2] % 99
        serial = 1 + int.from_bytes(d[3:5], "big") % 9999
        return _relayout(value, f"{area:03d}{group:02d}{serial:04d}")

    def _iban_code(self, value: str) -> str:
        compact = re.sub(r"\s", "", value).upper()
        country, bban = compact[:2], self.shaped("iban", compact[4:]).upper()
        check = iban_check_digits(country, bban)
        return _relayout(value, f"{country}{check:02d}{bban}", keep_alnum=True)

    def _ip_address(self, value: str) -> str:
        d = self.digest("ip", value, 16)
        if ":" in value:  # IPv6 (IPv4-mapped too); an IPv4 address never has a colon
            return str(ipaddress.IPv6Address(b"\xfd" + d[:15]))
        return f"10.{d[0]}.{d[1]}.{1 + d[2] % 254}"

    def _phone_number(self, value: str) -> str:
        digits = only_digits(value)
        nanp = NANP.fullmatch(value)
        if nanp:
            # +1 / (NPA) NXX-XXXX: keep the area code, draw a valid exchange (not N11, not 555)
            # and line, so the result is a valid number without asking phonenumbers.
            d = self.digits("phone", digits, 7)
            exchange = f"{2 + int(d[0]) % 8}{d[1]}{d[2]}"
            if exchange[1:] == "11" or exchange == "555":
                exchange = exchange[0] + "23"
            return _relayout(value, digits[: len(digits) - 7] + exchange + d[3:])
        keep = 2 if value.lstrip("(").startswith("+") else 0
        keep += 3 if len(digits) >= 10 else 0
        keep = min(keep, len(digits) - 4)
        candidate = value
        # A valid number gets a valid one; an invalid one its own shape, at the first draw.
        valid = is_phone(value, self._regions)
        for attempt in range(20 if valid else 1):
            tail = self.digits(f"phone{attempt}", digits, len(digits) - keep)
            tail = str(2 + int(tail[0]) % 8) + tail[1:]
            candidate = _relayout(value, digits[:keep] + tail)
            if candidate != value and (not valid or is_phone(candidate, self._regions)):
                return candidate
        return candidate

    def _jwt(self, value: str) -> str:
        sub = "pseudo-" + self.hex("jwt", value, 12)
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        payload = _b64url(orjson.dumps({"sub": sub}))
        return f"{header}.{payload}.{_b64url(self.digest('jwt-sig', value, 32))}"

    def _api_key(self, value: str) -> str:
        m = API_KEY_PREFIX.match(value)
        prefix = m.group() if m else ""
        return prefix + self.shaped("apikey", value[len(prefix) :])


def field_shape(value: str) -> str:
    """The entity whose pseudonym keeps this field value's format (no analysis: shape only),
    else ``FIELD_SHAPE``."""
    digits = only_digits(value)
    if 13 <= len(digits) <= 19 and is_luhn_valid(digits) and len(digits) * 2 > len(value):
        return Entity.CREDIT_CARD
    if JWT_SHAPE.fullmatch(value):
        return Entity.JWT
    if _IBAN_SHAPE.fullmatch(value):
        return Entity.IBAN_CODE
    if API_KEY_PREFIX.match(value):
        return Entity.API_KEY
    return FIELD_SHAPE


def _relayout(original: str, chars: str, keep_alnum: bool = False) -> str:
    """Pour ``chars`` into the separators of ``original`` (spaces, dashes, brackets)."""
    it = iter(chars)
    out = []
    for c in original:
        if c.isdigit() or (keep_alnum and c.isalnum()):
            out.append(next(it, "0"))
        else:
            out.append(c)
    out.extend(it)
    return "".join(out)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
