"""Secrets handed to people (activation codes, reset tokens) and the only form we store them in.

We store HMAC-SHA256(key, purpose:secret) with a key derived from SECRET_KEY, which never lives in
the database: a dump alone reveals no usable code or token, not even the 8-character activation
codes that a plain hash would let an attacker brute-force offline. The purpose is part of the
message, so a digest made for one purpose never matches another.
"""

import hashlib
import hmac
import secrets

from django.conf import settings

# The region's letters print codes from lowercase letters and digits, without the look-alikes
# 0 o 1 l i: 31 symbols, 8 of them = 39.6 bits, single-use and rate-limited.
ACTIVATION_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
ACTIVATION_CODE_LENGTH = 8


def _key() -> bytes:
    return hashlib.sha256(b"portail.tokens:" + settings.SECRET_KEY.encode()).digest()


def digest(purpose: str, secret: str) -> str:
    return hmac.new(_key(), f"{purpose}:{secret}".encode(), hashlib.sha256).hexdigest()


def matches(purpose: str, secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(purpose, secret), stored_digest)


def new_activation_code() -> str:
    return "".join(secrets.choice(ACTIVATION_ALPHABET) for _ in range(ACTIVATION_CODE_LENGTH))


def new_url_token() -> str:
    """256 bits from the CSPRNG, URL-safe (the issue asks for at least 128)."""
    return secrets.token_urlsafe(32)
