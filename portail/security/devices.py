"""Device cookies (OWASP Authentication Cheat Sheet, "Slow down online guessing attacks with
device cookies").

A browser where an account logged in successfully receives a signed cookie naming that account
(several, on a family computer) and a random device id. Failed logins from that browser for that
account are counted for the device alone, and a lockout of untrusted devices never applies to
it, so a classmate who guesses at Léa's account cannot keep Léa's own phone out.

The cookie is signed with SECRET_KEY (django.core.signing: HMAC-SHA256), so it holds no state
on the server and survives a cache restart; it is HttpOnly, SameSite=Lax, Secure over HTTPS, and
says nothing readable about the account (ids only).
"""

import hashlib
import hmac
import secrets

from django.conf import settings
from django.core import signing

COOKIE_NAME = "portail_device"
_SALT = "portail.security.devices"
# Accounts one browser remembers (a family computer: parents and children); oldest dropped first.
MAX_ACCOUNTS = 8


def _max_age() -> int:
    return settings.PORTAIL_DEVICE_COOKIE_DAYS * 24 * 3600


def _read(request) -> dict | None:
    cached = getattr(request, "_portail_device", False)
    if cached is not False:
        return cached
    value = request.COOKIES.get(COOKIE_NAME)
    data = None
    if value:
        try:
            data = signing.loads(value, salt=_SALT, max_age=_max_age())
        except signing.BadSignature:  # also SignatureExpired
            data = None
        if not (
            isinstance(data, dict)
            and isinstance(data.get("d"), str)
            and isinstance(data.get("u"), list)
        ):
            data = None
    request._portail_device = data
    return data


def is_known_device(request, user) -> bool:
    """Whether `user` logged in successfully from this browser before."""
    data = _read(request)
    return bool(data and user is not None and user.pk in data["u"])


def device_key(request) -> str | None:
    """A stable opaque id of this browser's device cookie (for per-device counters), or None."""
    data = _read(request)
    if not data:
        return None
    key = hashlib.sha256(b"portail.device-key:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(key, data["d"].encode(), hashlib.sha256).hexdigest()[:32]


def remember_device(request, response, user) -> None:
    """After a successful login: this browser becomes a known device of `user`."""
    data = _read(request) or {"d": secrets.token_urlsafe(18), "u": []}
    accounts = [pk for pk in data["u"] if pk != user.pk][-(MAX_ACCOUNTS - 1) :] + [user.pk]
    data = {"d": data["d"], "u": accounts}
    response.set_cookie(
        COOKIE_NAME,
        signing.dumps(data, salt=_SALT),
        max_age=_max_age(),
        secure=request.is_secure() or settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    request._portail_device = data
