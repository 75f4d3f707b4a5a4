"""Domain operations on accounts: logging in and out, and what the account page changes."""

import re
from dataclasses import dataclass

from django.contrib.auth import login as django_login
from django.contrib.auth import logout as django_logout
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from portail.audit.services import record
from portail.security import ratelimit, tokens

from .identifiers import fold_identifier
from .models import State, Token, User
from .passwords import evaluate_for_user

# prenom.nom, possibly with a number: jean.dupont2.
IDENTIFIER_SHAPE = re.compile(r"[a-z0-9]+\.[a-z0-9.]+")


class DomainError(Exception):
    """An expected refusal; its message is the French sentence shown to the user."""

    message = ""

    def __str__(self):
        return self.message


class InvalidCredentials(DomainError):
    # One message for a wrong identifier and a wrong password: it must not tell which.
    message = "L'identifiant ou le mot de passe est incorrect."


class AccountBlocked(DomainError):
    message = (
        "L'administrateur de votre établissement a bloqué votre accès à l'ENT. "
        "Veuillez le contacter."
    )


class AccountDeactivated(DomainError):
    message = (
        "Votre compte a été désactivé car vous ne faites plus partie d'un établissement de "
        "l'ENT. Si c'est une erreur, contactez le référent ENT de votre établissement."
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


def _loggable(identifier: str) -> str:
    # What was typed in "Identifiant" goes to the trail only if it looks like one: people do
    # type their password in the wrong field, and the audit log must hold no secret.
    return identifier if IDENTIFIER_SHAPE.fullmatch(identifier) else "(saisie non reconnue)"


def usable_activation_token(user, code: str) -> Token | None:
    now = timezone.now()
    for token in Token.objects.filter(user=user, purpose=Token.Purpose.ACTIVATION):
        if token.is_usable(now) and tokens.matches(Token.Purpose.ACTIVATION, code, token.digest):
            return token
    return None


def authenticate(request, typed_identifier: str, password: str):
    """Check identifier and password (or the first-connection code).

    Returns the User, or ActivationRequired for a valid activation code. Raises
    InvalidCredentials, AccountBlocked or ratelimit.RateLimited. Every branch costs one Argon2
    computation, so timing does not tell whether the account exists.
    """
    identifier = fold_identifier(typed_identifier)
    limits = {"login:identifier": identifier, "login:ip": _client_ip(request)}
    ratelimit.guard(limits)

    user = User.objects.filter(identifier=identifier).first() if identifier else None
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
    elif not user.password.startswith("argon2"):
        make_password(password)  # a migrated (fast) legacy hash costs what an Argon2 check does

    if result is None:
        record(
            "account.login.failed",
            request=request,
            target=user,
            subject=identifier if user else _loggable(identifier),
        )
        ratelimit.count(limits)
        raise InvalidCredentials
    if user.state == State.BLOCKED:
        record("account.login.blocked", request=request, target=user)
        raise AccountBlocked
    if not user.is_active:  # a leaver past the grace period
        record("account.login.deactivated", request=request, target=user)
        raise AccountDeactivated
    ratelimit.clear("login:identifier", identifier)
    return result


def log_in(request, user, *, remember: bool, remember_days: int):
    """Open the session (with a fresh id) and set its lifetime from "Se souvenir de moi"."""
    django_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    # Unchecked: a browser-session cookie (no Expires/Max-Age). Checked: remember_days days.
    request.session.set_expiry(remember_days * 24 * 3600 if remember else 0)
    record("account.login", request=request, target=user, remember=remember)


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
    record(tag, request=request, target=user)
