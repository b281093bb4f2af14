"""What JWTs and API keys look like (Stripe, AWS, GitHub, Slack, Google).

Lengths are loose enough that a truncated or padded key is still a key, and a JWT need not
be signed (``alg: none`` leaves the third part empty).
"""

from __future__ import annotations

import re

JWT_PATTERN = r"\beyJ[0-9A-Za-z_-]{5,}\.eyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*"
JWT_SHAPE = re.compile(JWT_PATTERN)
API_KEY_PATTERNS = (
    r"\b[spr]k_(?:live|test)_[0-9A-Za-z]{10,}\b",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{12,}\b",
    r"\bgh[pousr]_[0-9A-Za-z]{20,}\b",
    r"\bgithub_pat_[0-9A-Za-z_]{20,}\b",
    r"\bxox[abprs]-[0-9A-Za-z-]{10,}\b",
    r"\bAIza[0-9A-Za-z_-]{30,}",
)
# The prefix that says which service a key is for: its pseudonym keeps it.
API_KEY_PREFIX = re.compile(
    r"^(?:[spr]k_(?:live|test)_|AKIA|ASIA|gh[pousr]_|github_pat_|xox[abprs]-|AIza)"
)
