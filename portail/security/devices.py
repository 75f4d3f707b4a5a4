"""Device cookies (OWASP "Slow down online guessing attacks with device cookies").

STUB: the `throttle` branch writes the real module with this same interface; this minimal
version (a signed, account-bound cookie) only lets the recovery branch code and test against it.
"""

from django.core import signing

COOKIE_NAME = "portail_device"
_SALT = "portail.security.devices"
_MAX_AGE = 180 * 24 * 3600


def device_key(request) -> str | None:
    """The device's identifier from its signed cookie, or None for an unknown browser."""
    value = request.COOKIES.get(COOKIE_NAME)
    if not value:
        return None
    try:
        return signing.loads(value, salt=_SALT, max_age=_MAX_AGE)["device"]
    except (signing.BadSignature, KeyError, TypeError):
        return None


def is_known_device(request, user) -> bool:
    """True when this browser logged in to `user` successfully before."""
    value = request.COOKIES.get(COOKIE_NAME)
    if not value or user is None:
        return False
    try:
        data = signing.loads(value, salt=_SALT, max_age=_MAX_AGE)
    except signing.BadSignature:
        return False
    return isinstance(data, dict) and user.pk in data.get("users", [])


def remember_device(request, response, user) -> None:
    """Mark this browser as a known device of `user` (after a successful login)."""
    import secrets

    users = []
    key = None
    value = request.COOKIES.get(COOKIE_NAME)
    if value:
        try:
            data = signing.loads(value, salt=_SALT, max_age=_MAX_AGE)
            users, key = list(data.get("users", [])), data.get("device")
        except (signing.BadSignature, AttributeError):
            pass
    if user.pk not in users:
        users.append(user.pk)
    data = {"device": key or secrets.token_urlsafe(16), "users": users}
    response.set_cookie(
        COOKIE_NAME,
        signing.dumps(data, salt=_SALT),
        max_age=_MAX_AGE,
        httponly=True,
        samesite="Lax",
    )
