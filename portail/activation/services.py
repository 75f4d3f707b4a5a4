"""First connection: the activation code opens the activation page, which makes the account active."""

import logging
import time
from importlib import import_module

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portail.accounts.identifiers import fold_email
from portail.accounts.models import State, Token, User
from portail.accounts.services import DomainError, set_new_password
from portail.audit.services import record
from portail.security import ratelimit

log = logging.getLogger(__name__)

# Seconds the activation page stays open after the code was typed at login: long enough to
# think of a password, short enough that a shared PC left on this page does not stay open.
ACTIVATION_SESSION_SECONDS = 30 * 60

SESSION_KEYS = (
    "activation_user_id",
    "activation_token_id",
    "activation_started",
    "activation_remember",
    "activation_next",
    "activation_via_link",  # opened from the credentials mail's link (credentials.py)
)

# The printed code and the mailed link (credentials.py) open the same first connection.
ACTIVATION_PURPOSES = (Token.Purpose.ACTIVATION, Token.Purpose.ACTIVATION_LINK)


class ActivationExpired(DomainError):
    message = (
        "Votre première connexion n’a pas abouti à temps ou le code d’activation n’est plus "
        "valable. Saisissez de nouveau votre identifiant et votre code d’activation."
    )


class AlreadyActivated(DomainError):
    """The code of this session activated the account already: a retry after an unclear answer."""

    message = "Votre compte est déjà activé, connectez-vous avec votre nouveau mot de passe."


# After a committed activation whose login could not be completed (the session store failed).
ACTIVATED_LOG_IN_MESSAGE = (
    "Votre compte est activé. Connectez-vous avec votre identifiant et votre nouveau mot de passe."
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
    """The account whose first connection this session carries.

    Raises AlreadyActivated when this session's code did activate it (the answer was lost: a
    retry, a reload), ActivationExpired otherwise.
    """
    session = request.session
    user_id = session.get("activation_user_id")
    if not user_id:
        raise ActivationExpired
    user = User.objects.filter(pk=user_id).first()
    if user is not None and user.state != State.PENDING:
        if _activated_by_this_session(request, user):
            raise AlreadyActivated
        raise ActivationExpired
    started = session.get("activation_started") or 0
    if user is None or time.time() - started > ACTIVATION_SESSION_SECONDS:
        raise ActivationExpired
    return user


def _activated_by_this_session(request, user) -> bool:
    return (
        user.activated_at is not None
        and Token.objects.filter(
            pk=request.session.get("activation_token_id"),
            user=user,
            purpose__in=ACTIVATION_PURPOSES,
            used_at__isnull=False,
        ).exists()
    )


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
                purpose__in=ACTIVATION_PURPOSES,
            )
            .first()
        )
        now = timezone.now()
        if user is None:  # a second submission of the same form waited for the first one
            activated = User.objects.filter(pk=request.session.get("activation_user_id")).first()
            if activated is not None and _activated_by_this_session(request, activated):
                raise AlreadyActivated
            raise ActivationExpired
        if token is None or token.user_id != user.pk or not token.is_usable(now):
            raise ActivationExpired
        # Policy check, password set, every session of the account ended, reset links killed
        # (so none outlives the address set here either).
        set_new_password(request, user, password, tag="account.password.set")
        user.email = fold_email(email)
        user.phone = phone
        user.charter_accepted_at = now
        user.activated_at = now
        user.state = State.ACTIVE
        user.save(update_fields=["email", "phone", "charter_accepted_at", "activated_at", "state"])
        token.used_at = now
        token.save(update_fields=["used_at"])
        # Every other code and link of the account dies with it.
        Token.objects.filter(user=user, purpose__in=ACTIVATION_PURPOSES).exclude(
            pk=token.pk
        ).delete()
        # That an email and a phone were given, not what they are: the trail holds no contact data.
        # The address is proven only when the person came through the link mailed to the import's
        # contact address and kept that address: OIDC's email_verified reads this (sso.oidc).
        email_proven = (
            token.purpose == Token.Purpose.ACTIVATION_LINK
            and bool(user.contact_email)
            and fold_email(user.contact_email) == user.email
        )
        record(
            "account.activated",
            request=request,
            target=user,
            phone_given=bool(phone),
            email_proven=email_proven,
        )
    try:  # committed: a cache failure now must not turn the activation into an error
        ratelimit.clear("activation:identifier", user.identifier)
    except Exception:
        log.warning("activation committed, its attempt counter could not be cleared")
    return user


def save_session_after_commit(request, what: str) -> bool:
    """Save the session now that the domain transaction has committed; False if it failed.

    An activation or reset that committed must never be shown as an error (issue 8 §2): if the
    session store fails here (database or Redis down), the session is left unsaved (the session
    middleware will then neither retry nor send a cookie for a session that does not exist) and
    the caller tells the person what happened; the messages travel in a cookie, not the session.
    """
    try:
        request.session.save()
        return True
    except Exception:
        log.exception("%s committed, but its session could not be saved", what)
        request.session.modified = False
        return False


def leave_activation_note(old_session_key: str | None, user, token_id) -> None:
    """Under the browser's former session key, note that this code activated the account.

    Logging in gives the session a new key and deletes the old one; if the answer carrying the
    new cookie is lost (a cut connection), the browser comes back with the old key. The note
    (no login, only whose activation it was) turns that retry into AlreadyActivated instead of
    a silent trip to the login page. Best effort: the login already succeeded.
    """
    if not old_session_key:
        return
    try:
        note = import_module(settings.SESSION_ENGINE).SessionStore(old_session_key)
        # Filled without loading: loading a deleted session would give the store a new key.
        note._session_cache = {
            "activation_user_id": user.pk,
            "activation_token_id": token_id,
            "activation_started": int(time.time()),
        }
        note.set_expiry(ACTIVATION_SESSION_SECONDS)
        note.save(must_create=True)
    except Exception:
        log.warning("activation note not left under the former session key")
