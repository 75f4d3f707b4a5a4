"""Authenticated encryption of data at rest that must stay readable by the app only.

Used for queued email bodies, which carry live links (reset tokens) until they are sent: a
database dump alone must not reveal a usable token (issue 2 §8). AES-256-GCM, key derived from
SECRET_KEY (never in the database) and bound to a purpose.
"""

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

PREFIX = "gcm1:"


class Unreadable(Exception):
    """Sealed with another key (SECRET_KEY rotated) or altered."""


def _key(purpose: str) -> bytes:
    return hashlib.sha256(f"portail.sealing:{purpose}:{settings.SECRET_KEY}".encode()).digest()


def seal(purpose: str, plaintext: str) -> str:
    nonce = os.urandom(12)  # 96-bit random nonce, NIST SP 800-38D §8.2.2
    data = AESGCM(_key(purpose)).encrypt(nonce, plaintext.encode(), purpose.encode())
    return PREFIX + base64.b64encode(nonce + data).decode()


def unseal(purpose: str, sealed: str) -> str:
    if not sealed:
        return ""
    if not sealed.startswith(PREFIX):
        raise Unreadable("not sealed")
    raw = base64.b64decode(sealed[len(PREFIX) :])
    try:
        return AESGCM(_key(purpose)).decrypt(raw[:12], raw[12:], purpose.encode()).decode()
    except InvalidTag as exc:
        raise Unreadable("wrong key or altered") from exc
