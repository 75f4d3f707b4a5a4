"""TOTP (RFC 6238) arithmetic and the storage form of its secret.

The shared secret must be readable by the server to compute codes, so it cannot be hashed like a
password: it is encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from
SECRET_KEY, which never lives in the database. A dump alone gives no usable second factor.
"""

import base64
import hashlib
import hmac
import secrets

import pyotp
from cryptography.fernet import Fernet
from django.conf import settings

from portail.security import tokens

# RFC 6238 §4 and §5.2, and what every authenticator app expects: 30-second steps, 6 digits,
# HMAC-SHA1, and one step of tolerated clock drift on either side.
STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
ISSUER = "Portail ENT"
RECOVERY_CODE_COUNT = 10
RECOVERY_PURPOSE = "totp-recovery"


def _fernet() -> Fernet:
    key = hashlib.sha256(b"portail.console.totp:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def new_secret() -> str:
    # RFC 4226 §4 asks for at least 128 bits; pyotp's default is 160 (32 base32 characters).
    return pyotp.random_base32()


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(stored: str) -> str:
    return _fernet().decrypt(stored.encode()).decode()


def provisioning_uri(secret: str, account_name: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account_name, issuer_name=ISSUER
    )


def matching_step(secret: str, code: str, at: float) -> int | None:
    """The time step (within ±DRIFT_STEPS of `at`) whose code is `code`, or None."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now_step = int(at // STEP_SECONDS)
    found = None
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        # Compare every candidate, in constant time, so timing does not tell which one matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def new_recovery_code() -> str:
    """Ten characters of the activation alphabet (no look-alikes), shown as xxxxx-xxxxx: 49 bits."""
    raw = "".join(secrets.choice(tokens.ACTIVATION_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalise_recovery_code(typed: str) -> str:
    raw = "".join(ch for ch in typed.lower() if ch.isalnum())
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == 10 else ""


def recovery_digest(code: str) -> str:
    return tokens.digest(RECOVERY_PURPOSE, code)
