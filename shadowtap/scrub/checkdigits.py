"""Check digits: Luhn for card numbers, ISO 7064 mod 97 for IBANs.

Detection asks whether a number passes its check; pseudonyms make numbers that do.
"""

from __future__ import annotations


def only_digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def luhn_check_digit(body: str) -> int:
    """The digit that makes ``body`` + it pass the Luhn check."""
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def is_luhn_valid(number: str) -> bool:
    digits = only_digits(number)
    return len(digits) > 1 and luhn_check_digit(digits[:-1]) == int(digits[-1])


def iban_check_digits(country: str, bban: str) -> int:
    """The two check digits of the IBAN of ``country`` and account part ``bban``."""
    return 98 - int(_iban_digits(bban + country + "00")) % 97


def _iban_digits(text: str) -> str:
    return "".join(str(int(c, 36)) for c in text)
