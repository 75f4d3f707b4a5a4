"""First connection: the activation code opens the activation page, which makes the account active."""

import time

from django.db import transaction
from django.utils import timezone

from portail.accounts.identifiers import fold_email
from portail.accounts.models import State, Token, User
from portail.accounts.services import DomainError, set_new_password
from portail.audit.services import record
from portail.security import ratelimit

# Seconds the activation page stays open after the code was typed at login: long enough to
# think of a password, short enough that a shared PC left on this page does not stay open.
ACTIVATION_SESSION_SECONDS = 30 * 60

SESSION_KEYS = (
    "activation_user_id",
    "activation_token_id",
    "activation_started",
    "activation_remember",
    "activation_next",
)


class ActivationExpired(DomainError):
    message = (
        "Votre première connexion n'a pas abouti à temps ou le code d'activation n'est plus "
        "valable. Saisissez de nouveau votre identifiant et votre code d'activation."
    )


def begin_activation(request, result, *, remember: bool, next_url: str) -> None:
    """Remember, in a fresh session, whose code was just accepted; the activation page takes it."""
    request.session.flush()
    request.session["activation_user_id"] = result.user.pk
    request.session["activation_token_id"] = result.token.pk
    request.session["activation_started"] = int(time.time())
    request.session["activation_remember"] = bool(remember)
    request.session["activation_next"] = next_url


def pending_activation(request) -> User:
    """The account whose first connection this session carries; ActivationExpired otherwise."""
    session = request.session
    user_id = session.get("activation_user_id")
    started = session.get("activation_started") or 0
    if not user_id or time.time() - started > ACTIVATION_SESSION_SECONDS:
        raise ActivationExpired
    user = User.objects.filter(pk=user_id, state=State.PENDING).first()
    if user is None:
        raise ActivationExpired
    return user


def end_activation(request) -> dict:
    """Take the activation keys out of the session; return them."""
    return {key: request.session.pop(key, None) for key in SESSION_KEYS}


def count_attempt(request, user) -> None:
    """Each submitted activation form counts (each costs a strength estimate); RateLimited.

    Per account only: the page needs a valid code in the session, and a whole school activates
    from one address on the first morning (no per-address refusal)."""
    ratelimit.hit("activation:identifier", user.identifier)


def activate_account(request, user, *, password: str, email: str, phone: str = "") -> User:
    """Make a pending account active: its password, email, phone and the charter, in one go.

    The code typed at login is checked again under a row lock (it may have been used, replaced or
    expired since); the password must pass the policy (WeakPassword otherwise). Then the code is
    dead, like every other activation code of the account. Raises ActivationExpired.
    """
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user.pk, state=State.PENDING).first()
        token = (
            Token.objects.select_for_update()
            .filter(
                pk=request.session.get("activation_token_id"),
                purpose=Token.Purpose.ACTIVATION,
            )
            .first()
        )
        now = timezone.now()
        if user is None or token is None or token.user_id != user.pk or not token.is_usable(now):
            raise ActivationExpired
        # Policy check, password set, every session of the account ended, reset links killed.
        set_new_password(request, user, password, tag="account.password.set")
        user.email = fold_email(email)
        user.phone = phone
        user.charter_accepted_at = now
        user.activated_at = now
        user.state = State.ACTIVE
        user.save(update_fields=["email", "phone", "charter_accepted_at", "activated_at", "state"])
        token.used_at = now
        token.save(update_fields=["used_at"])
        Token.objects.filter(user=user, purpose=Token.Purpose.ACTIVATION).exclude(
            pk=token.pk
        ).delete()
        # That an email and a phone were given, not what they are: the trail holds no contact data.
        record("account.activated", request=request, target=user, phone_given=bool(phone))
    ratelimit.clear("activation:identifier", user.identifier)
    return user
