"""Domain operations on accounts: logging in and out, and what the account page changes."""

from dataclasses import dataclass

from django.contrib.auth import login as django_login
from django.contrib.auth import logout as django_logout
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from portail.audit.services import record, record_later
from portail.ops import statements
from portail.security import ratelimit, throttle, tokens

from .identifiers import fold_identifier
from .models import State, Token, User
from .passwords import evaluate_for_user


class DomainError(Exception):
    """An expected refusal; its message is the French sentence shown to the user."""

    message = ""

    def __str__(self):
        return self.message


class InvalidCredentials(DomainError):
    # One message for a wrong identifier and a wrong password: it must not tell which.
    message = "L’identifiant ou le mot de passe est incorrect."


class AccountLocked(DomainError):
    """Too many failures from untrusted devices: this device waits (CNIL 2022-100, cas n° 2)."""

    def __init__(self, minutes: int):
        super().__init__(minutes)
        self.minutes = minutes
        self.message = (
            "Trop d’essais infructueux pour ce compte depuis cet appareil. Par sécurité, "
            f"veuillez patienter {minutes} minute{'s' if minutes > 1 else ''} avant de réessayer. "
            "Si vous avez oublié votre mot de passe, utilisez « Besoin d'aide ? » pour en "
            "obtenir un nouveau, ou demandez au référent ENT de votre établissement."
        )


class AlreadyActivated(InvalidCredentials):
    """The password typed is the account's last used activation code: the letter's code served
    at the first connection, the password chosen then is the one to use. Still a failure."""

    message = "Votre compte est déjà activé, connectez-vous avec votre nouveau mot de passe."


class ChallengeRequired(DomainError):
    """Many failures from this address: prove some work first (no password was checked)."""

    message = (
        "Par sécurité, de nombreux essais venant de votre réseau imposent une vérification "
        "automatique de votre navigateur. Saisissez de nouveau votre mot de passe puis "
        "validez : la vérification se fait toute seule, en quelques secondes."
    )


class AccountBlocked(DomainError):
    message = (
        "L’administrateur de votre établissement a bloqué votre accès à l’ENT. "
        "Veuillez le contacter."
    )


class AccountDeactivated(DomainError):
    message = (
        "Votre compte a été désactivé car vous ne faites plus partie d’un établissement de "
        "l’ENT. Si c’est une erreur, contactez le référent ENT de votre établissement."
    )


class WeakPassword(DomainError):
    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors
        self.message = " ".join(errors)


@dataclass
class ActivationRequired:
    """The credentials were a valid first-connection code: the activation page comes next."""

    user: User
    token: Token


def _client_ip(request):
    return getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR")


def usable_activation_token(user, code: str) -> Token | None:
    now = timezone.now()
    for token in Token.objects.filter(user=user, purpose=Token.Purpose.ACTIVATION):
        if token.is_usable(now) and tokens.matches(Token.Purpose.ACTIVATION, code, token.digest):
            return token
    return None


# Compared when no account (or no used code) is there, so that every failure costs one keyed
# digest and one comparison: the answer's time does not tell whether such a code exists.
_NO_CODE_DIGEST = "0" * 64


def _is_used_activation_code(user, password: str) -> bool:
    """Whether `password` is the activation code `user` (an active account) last activated with.

    One indexed query and one keyed digest compared in constant time, run on every failed path
    (unknown identifiers included, on an id no account has): the message it unlocks is only
    ever shown to whoever holds the letter's code of an active account."""
    active = user is not None and user.state == State.ACTIVE and user.has_usable_password()
    stored = (
        Token.objects.filter(
            user_id=user.pk if active else 0,
            purpose=Token.Purpose.ACTIVATION,
            used_at__isnull=False,
        )
        .order_by("-used_at")
        .values_list("digest", flat=True)
        .first()
    )
    same = tokens.matches(
        Token.Purpose.ACTIVATION, password.strip().lower()[:64], stored or _NO_CODE_DIGEST
    )
    return active and stored is not None and same


def _user_named(identifier: str) -> User | None:
    """User.objects.filter(identifier=…).first(), its SQL compiled once (every login asks)."""
    return statements.first(
        "accounts.user_named",
        lambda name: User.objects.filter(identifier=name).order_by("pk")[:1],
        [identifier],
    )


def authenticate(request, typed_identifier: str, password: str):
    """Check identifier and password (or the first-connection code).

    Returns the User, or ActivationRequired for a valid activation code. Raises
    ChallengeRequired (address over its budget, no valid proof of work: nothing was checked),
    AccountLocked (too many failures from untrusted devices, or from this known device),
    InvalidCredentials (AlreadyActivated when the password is the account's used activation
    code), AccountBlocked or AccountDeactivated. Every account (unknown, pending,
    blocked, normal) costs the same one Argon2 computation, so timing does not tell whether it
    exists. Legacy hashes get no extra computation: they are wrapped in Argon2id at import
    (the `atrest` work), so verifying any stored hash is one Argon2 computation.
    """
    identifier = fold_identifier(typed_identifier)
    user = _user_named(identifier) if identifier else None
    if throttle.login_needs_challenge(request, user) and not throttle.solved_challenge(request):
        raise ChallengeRequired
    try:
        throttle.check_login_lock(request, user, identifier)
    except throttle.Locked as exc:
        record(
            "account.login.locked",
            request=request,
            target=user,
            subject="" if user else throttle.identifier_fingerprint(identifier),
            **_network(request),
        )
        raise AccountLocked(exc.minutes) from None

    result = None
    if user is None:
        make_password(password)  # same work as a real check
    elif user.state == State.PENDING or not user.has_usable_password():
        # Not activated yet (possibly blocked before its first connection): only the code opens.
        make_password(password)
        token = usable_activation_token(user, password.strip().lower())
        if token is not None:
            result = ActivationRequired(user, token)
    elif user.check_password(password):  # upgrades an outdated hash on success
        result = user

    if result is None:
        used_code = _is_used_activation_code(user, password)
        # The trail names an existing account by its id; what was typed for no account is kept
        # only as a keyed hash: it may be a password typed in the wrong field.
        record(
            "account.login.failed",
            request=request,
            target=user,
            subject="" if user else throttle.identifier_fingerprint(identifier),
            **_network(request),
            **({"reason": "used_activation_code"} if used_code else {}),
        )
        throttle.record_login_failure(request, user, identifier)
        raise AlreadyActivated if used_code else InvalidCredentials
    throttle.record_login_success(request, user)
    if user.state == State.BLOCKED:
        record("account.login.blocked", request=request, target=user)
        raise AccountBlocked
    if not user.is_active:  # a leaver past the grace period
        record("account.login.deactivated", request=request, target=user)
        raise AccountDeactivated
    return result


def _network(request) -> dict:
    """The declared school network of the client address, for the audit event's data."""
    label = getattr(request, "school_network", "")
    return {"network": label} if label else {}


def log_in(request, user, *, remember: bool, remember_days: int, method: str = ""):
    """Open the session (with a fresh id) and set its lifetime from "Se souvenir de moi".
    `method`: how a federated login proved the person ("educonnect", "franceconnect")."""
    django_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    # Unchecked: a browser-session cookie (no Expires/Max-Age). Checked: remember_days days.
    request.session.set_expiry(remember_days * 24 * 3600 if remember else 0)
    # With last_login and the session index (signals), written with the session row on
    # PostgreSQL: the login's writes are one statement (ops.statements.later).
    record_later(
        "account.login",
        request=request,
        target=user,
        remember=remember,
        **({"method": method} if method else {}),
        **_network(request),
    )


def log_out(request):
    user = request.user if request.user.is_authenticated else None
    if user is not None:
        record("account.logout", request=request, target=user)
    django_logout(request)  # flushes the session on the server


def verify_current_password(request, user, password: str) -> bool:
    ratelimit.guard({"account:user": user.pk})
    if user.check_password(password):
        ratelimit.clear("account:user", user.pk)
        return True
    ratelimit.hit("account:user", user.pk)
    record("account.password.check_failed", request=request, target=user)
    return False


@transaction.atomic
def set_new_password(request, user, new_password: str, *, tag: str):
    """Set a password that passed the policy, end the account's other sessions, audit it."""
    strength = evaluate_for_user(new_password, user)
    if not strength.acceptable:
        raise WeakPassword(strength.errors)
    user.set_password(new_password)
    user.end_all_sessions()
    user.save(update_fields=["password", "session_stamp"])
    # Every outstanding reset link dies with the old password.
    Token.objects.filter(user=user, purpose=Token.Purpose.RESET, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    if tag == "account.password.reset":  # the owner proved the mailbox: the lock goes
        throttle.clear_account_failures(user)
    record(tag, request=request, target=user)
