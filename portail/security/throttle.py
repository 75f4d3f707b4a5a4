"""The front door's throttling model: who is slowed down, and how.

1. Account lockout, untrusted devices only (CNIL délibération n° 2022-100, cas n° 2: « une
   temporisation d'accès au compte après plusieurs échecs »): after
   PORTAIL_LOGIN_FAILURES_BEFORE_DELAY (5) consecutive failures, a delay of more than a minute
   that doubles with each further failure (2, 4, 8… minutes), and at most 25 failures per sliding
   24 hours per account (PORTAIL_RATE_LIMITS["login:account"]). Counted on the folded identifier,
   in the database (LoginFailures): a Redis restart resets nothing.
2. Device cookies (devices.py): failures from a browser where the account logged in before are
   counted for that browser alone, under the same rule, and the untrusted-device lockout never
   applies to it. Nobody can lock anybody out of their own known device.
3. Address budgets (sliding windows in the cache): failures from untrusted devices at one address
   (or one declared school network, with a school-sized budget) beyond the budget do not refuse
   anything: they make that address's untrusted devices solve a proof-of-work challenge (ALTCHA,
   self-hosted) before the password is even checked. A flood of junk logins then costs the
   flooder CPU, and costs the server a page render, while every classmate still gets in.
   The recovery pages have budgets of their own ("recovery", "reset"; see BUDGETS) and the same
   challenge, so junk lost-password requests never shut « Besoin d'aide ? » for a school.

A cache error never raises here: address budgets then answer "within budget" (the account
counters, in the database, still hold), unknown identifiers answer "not locked" (there is no
account to protect), and used challenges are kept in the database.
"""

import base64
import datetime
import hashlib
import hmac
import json
import logging
import time

import altcha
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from portail.ops import statements

from . import ratelimit
from .addresses import budget_key
from .devices import device_key, is_known_device
from .models import LoginFailures, UsedChallenge

log = logging.getLogger(__name__)

DAY = 24 * 3600
# The POST field carrying the solved challenge (the ALTCHA payload, base64 JSON).
CHALLENGE_FIELD = "altcha"
_MAX_PAYLOAD = 4096


class Locked(Exception):
    """No attempt is checked before `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = max(1, int(retry_after))

    @property
    def minutes(self) -> int:
        return max(1, -(-self.retry_after // 60))


# --- The lockout rule (pure) -------------------------------------------------------------------


def _after_failure(consecutive: int, recent: list, now: float):
    """(consecutive, recent, locked_until) after one more failure at `now`."""
    cap, window = settings.PORTAIL_RATE_LIMITS["login:account"]
    consecutive += 1
    recent = [t for t in recent if t > now - window][-(cap - 1) :] + [now]
    locked_until = 0.0
    threshold = settings.PORTAIL_LOGIN_FAILURES_BEFORE_DELAY
    if consecutive >= threshold:
        minutes = min(
            settings.PORTAIL_LOGIN_FIRST_DELAY_MINUTES * 2 ** min(consecutive - threshold, 20),
            settings.PORTAIL_LOGIN_MAX_DELAY_MINUTES,
        )
        locked_until = now + minutes * 60
    if len(recent) >= cap:  # the oldest of the last `cap` failures must leave the window
        locked_until = max(locked_until, recent[-cap] + window)
    return consecutive, recent, locked_until


def _remaining(locked_until: float, now: float) -> int:
    return int(locked_until - now) + 1 if locked_until and locked_until > now else 0


# --- Per-account counters (database) -----------------------------------------------------------


def _device_of(request, user) -> str:
    """The counter this attempt belongs to: its own for a known device, else the shared one."""
    if user is not None and is_known_device(request, user):
        return device_key(request) or ""
    return ""


def _unknown_key(folded: str) -> str:
    digest = hmac.new(_key(b"unknown-identifier"), folded.encode(), hashlib.sha256).hexdigest()
    return "lf:" + digest[:32]


def check_login_lock(request, user, folded: str) -> None:
    """Raise Locked if this device may not try this account now (before the password check)."""
    now = time.time()
    if user is None:
        # No account: the same rule in the cache, so a lock does not tell whether it exists.
        try:
            state = cache.get(_unknown_key(folded)) if folded else None
        except Exception:
            log.warning("login throttle: cache unavailable", exc_info=True)
            state = None
        remaining = _remaining((state or {}).get("until", 0), now)
    else:
        device = _device_of(request, user)
        # LoginFailures.objects.filter(user=…, device=…).first(), compiled once (every login).
        row = statements.first(
            "throttle.login_failures",
            lambda pk, key: (
                LoginFailures.objects.filter(user_id=pk).filter(device=key).order_by("pk")[:1]
            ),
            [user.pk, device],
        )
        remaining = _remaining(row.locked_until.timestamp(), now) if row and row.locked_until else 0
        # Nothing to reset on success when this counter was already clean (record_login_success).
        clean = row is None or (row.consecutive == 0 and row.locked_until is None)
        request.portail_clean_failures = (user.pk, device) if clean else None
    if remaining:
        raise Locked(remaining)


def record_login_failure(request, user, folded: str) -> None:
    """Count a failed password or code for the account (or the unknown name) and the address."""
    now = time.time()
    device = _device_of(request, user)
    if user is None:
        if folded:
            key = _unknown_key(folded)
            try:
                state = cache.get(key) or {}
                c, recent, until = _after_failure(state.get("c", 0), state.get("r", []), now)
                cache.set(key, {"c": c, "r": recent, "until": until}, DAY + 60)
            except Exception:
                log.warning("login throttle: cache unavailable", exc_info=True)
    else:
        with transaction.atomic():
            row, _ = LoginFailures.objects.select_for_update().get_or_create(
                user=user, device=device
            )
            row.consecutive, row.recent, until = _after_failure(row.consecutive, row.recent, now)
            row.locked_until = (
                datetime.datetime.fromtimestamp(until, tz=datetime.UTC) if until else None
            )
            row.save(update_fields=["consecutive", "recent", "locked_until"])
    if not device:  # known devices neither spend nor need the address budget
        count_address_failure(request)


def record_login_success(request, user) -> None:
    """The right password from this device: its consecutive failures start again from zero.

    When check_login_lock read this counter clean in the same request, there is nothing to reset:
    one UPDATE less per login. (A failure counted meanwhile by a concurrent request then stays:
    stricter, never looser.)
    """
    device = _device_of(request, user)
    if getattr(request, "portail_clean_failures", None) == (user.pk, device):
        return
    LoginFailures.objects.filter(user=user, device=device).exclude(
        consecutive=0, locked_until=None
    ).update(consecutive=0, locked_until=None)


def clear_account_failures(user) -> None:
    """The owner reset the password, or a référent unblocked the account: start afresh."""
    LoginFailures.objects.filter(user=user).delete()


def account_is_locked(user) -> bool:
    """Whether untrusted devices are locked out of `user` now (for the console's account page)."""
    row = LoginFailures.objects.filter(user=user, device="").first()
    return bool(row and row.locked_until and row.locked_until > timezone.now())


# --- Address budgets (cache) -------------------------------------------------------------------


# The pages whose requests draw on an address budget: "<page>:address" and "<page>:school" are
# their rules in PORTAIL_RATE_LIMITS (login: failures; recovery: requests; reset: failures).
BUDGETS = ("login", "recovery", "reset")


def _budget(request, page: str = "login") -> tuple[str, str]:
    if page not in BUDGETS:
        raise ValueError(f"no address budget named {page!r}")
    key, school = budget_key(getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR"))
    return (f"{page}:school" if school else f"{page}:address"), key


def count_address_failure(request, amount: int = 1, *, page: str = "login") -> None:
    """One more failure from an untrusted device at this address (other views may count too)."""
    rule, key = _budget(request, page)
    ratelimit.add(rule, key, amount)


def count_address_request(request, page: str) -> None:
    """One more request of `page` from this address, counted only for untrusted devices: known
    devices neither spend nor need the budget (as at login)."""
    if device_key(request) is None:
        count_address_failure(request, page=page)


def address_over_budget(request, page: str = "login") -> bool:
    rule, key = _budget(request, page)
    limit, _ = settings.PORTAIL_RATE_LIMITS[rule]
    return ratelimit.count_of(rule, key) >= limit


def login_needs_challenge(request, user) -> bool:
    """The login's question: only a device known for this very account skips the challenge."""
    if user is not None and is_known_device(request, user):
        return False
    return address_over_budget(request)


def require_challenge(request, page: str = "login") -> bool:
    """Whether this request must solve a challenge first: its address is over `page`'s budget and
    the browser is not a known device (of any account). Decided on the address and the device
    alone, never on an account, so it tells nothing about one. Pair with solved_challenge()."""
    if device_key(request) is not None:
        return False
    return address_over_budget(request, page)


# --- Proof-of-work challenges (ALTCHA) ---------------------------------------------------------


def _key(purpose: bytes) -> bytes:
    return hashlib.sha256(
        b"portail.throttle." + purpose + b":" + settings.SECRET_KEY.encode()
    ).digest()


def new_challenge() -> dict:
    """A fresh HMAC-signed challenge for the widget (partials/challenge.html)."""
    expires = timezone.now() + datetime.timedelta(seconds=settings.PORTAIL_CHALLENGE_SECONDS)
    challenge = altcha.create_challenge_v1(
        algorithm="SHA-256",
        max_number=settings.PORTAIL_CHALLENGE_MAX_NUMBER,
        hmac_key=_key(b"challenge").hex(),
        expires=expires,
    )
    return challenge.to_dict()


def solved_challenge(request) -> bool:
    """Whether the request carries a valid, unexpired, never used solution (then spends it)."""
    payload = request.POST.get(CHALLENGE_FIELD, "")
    if not payload or len(payload) > _MAX_PAYLOAD:
        return False
    try:
        data = json.loads(base64.b64decode(payload, validate=True))
        signature = str(data["signature"])
        expires = int(altcha.extract_params_v1(data)["expires"][0])
    except (ValueError, TypeError, KeyError, IndexError):
        return False
    if data.get("algorithm") != "SHA-256" or len(signature) > 128:
        return False
    ok, _ = altcha.verify_solution_v1(data, _key(b"challenge").hex(), check_expires=True)
    expected = altcha.hmac_hex(
        "SHA-256", str(data.get("challenge", "")).encode(), _key(b"challenge").hex()
    )
    if not ok or not hmac.compare_digest(expected, signature):
        return False
    now = timezone.now()
    try:
        with transaction.atomic():
            UsedChallenge.objects.create(
                signature=signature,
                expires_at=datetime.datetime.fromtimestamp(expires, tz=datetime.UTC),
            )
    except IntegrityError:
        return False  # replayed
    UsedChallenge.objects.filter(expires_at__lt=now).delete()
    return True


def passes_challenge(request, page: str = "login") -> bool:
    """For other views: True when no challenge is needed or a valid one was solved."""
    return not require_challenge(request, page) or solved_challenge(request)


# --- Audit ---------------------------------------------------------------------------------------


def identifier_fingerprint(folded: str) -> str:
    """What the audit log keeps of a typed identifier that names no account: a keyed hash, so
    repeated attempts on one name correlate, but the text (maybe a password) is not kept."""
    digest = hmac.new(_key(b"audit-identifier"), folded.encode(), hashlib.sha256).hexdigest()
    return "inconnu:" + digest[:16]
