"""« Besoin d'aide ? »: reset links for a lost password, reminders for a lost identifier.

Every operation counts against its address budget before it looks anything up (over budget, the
view has untrusted devices solve the login's proof-of-work challenge first: a school behind one
address is slowed down, never refused), records what happened in the audit log (never the
token), and queues its email inside the transaction that changes the data. The French sentences live on the typed errors; the views only choose where to show them.

Against harassment and enumeration (issue 7):
- an account (a reset link) or an address (an identifier reminder) gets at most one recovery mail
  every PORTAIL_RECOVERY_MAIL_MINUTES, except for its owner's own known device;
- asking for a link kills nothing: an older link stays valid until a link is used (or the
  password or the address changes), so someone else's requests never kill the owner's link;
- opening a link spends it: the emailed secret dies and a fresh secret, known only to this
  session, carries the reset page, so a token read from a log is dead once the owner opened it;
- addresses are found by an exact, indexed match on User.email_folded, folded by the same
  function as the limit keys;
- in the neutral mode every case does the same work (one indexed lookup, one cache round trip,
  one audit row) and the mail is only queued, never delivered inside the request.
"""

import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from portail.accounts.identifiers import fold_email, fold_identifier, identifier_part
from portail.accounts.models import State, Token, User
from portail.accounts.services import (
    AccountBlocked,
    AccountDeactivated,
    DomainError,
    set_new_password,
)
from portail.audit.models import Event
from portail.audit.services import record
from portail.mail.services import send_template
from portail.security import sealing, throttle, tokens
from portail.security.devices import is_known_device

log = logging.getLogger(__name__)

# Shown whatever the account when PORTAIL_NEUTRAL_RECOVERY_MESSAGES is on (the hardened mode):
# the answer must not tell whether an identifier or an address exists.
NEUTRAL_MESSAGE = (
    "Si un compte correspond, un courriel vient d’être envoyé à l’adresse de messagerie donnée "
    "lors de la première connexion. Pensez à vérifier votre dossier de courriers indésirables."
)
RESET_SENT_MESSAGE = (
    "Un courriel contenant les instructions pour changer votre mot de passe vient d’être envoyé "
    "à l’adresse de messagerie donnée lors de la première connexion. S’il n’arrive pas d’ici "
    "quelques minutes, vérifiez votre dossier de courriers indésirables."
)
IDENTIFIER_SENT_MESSAGE = (
    "Un courriel contenant votre identifiant vient d’être envoyé à cette adresse de messagerie. "
    "S’il n’arrive pas d’ici quelques minutes, vérifiez votre dossier de courriers indésirables."
)
# The second step of lost identifier answers this whatever first name was typed: the mail, sent
# to the address itself, says which accounts bear it, or that none does.
DETAILS_SENT_MESSAGE = (
    "Un courriel vient d’être envoyé à cette adresse de messagerie : il contient l’identifiant "
    "de chaque compte qui porte ce prénom, avec son établissement, ou vous indique qu’aucun "
    "compte ne le porte. S’il n’arrive pas d’ici quelques minutes, vérifiez votre dossier de "
    "courriers indésirables."
)
PASSWORD_CHANGED_MESSAGE = (
    "Votre mot de passe a été modifié. Vous pouvez dès maintenant vous connecter avec votre "
    "nouveau mot de passe."
)

# Session keys of the reset page. The emailed secret is spent when the link is opened; the session
# holds a fresh secret whose digest (under SESSION_PURPOSE) is the row of the link's continuation.
SESSION_RESET_TOKEN = "reset_token"
SESSION_RESET_USER = "reset_user_id"  # also read by the strength meter (/auth/password-strength)
SESSION_RESET_OPENED = "reset_opened"  # digest of the emailed link this browser spent
SESSION_RESET_DONE = "reset_done"  # the account whose password this browser just reset
SESSION_PURPOSE = "reset-session"  # a session secret never matches a link's digest, nor the reverse
# Session key of the lost-identifier second step: the address typed at the first step.
SESSION_IDENTIFIER_EMAIL = "identifier_email"

RESET_TAG = "account.password.reset_requested"
IDENTIFIER_TAG = "account.identifier.requested"


class UnknownUser(DomainError):
    message = "Utilisateur inconnu, veuillez vérifier la saisie de votre identifiant."


class AccountNotActivated(DomainError):
    message = (
        "Votre compte n’est pas encore activé : aucune adresse de messagerie n’y est encore "
        "associée. Connectez-vous depuis l’écran d’accueil avec votre identifiant et le code "
        "d’activation reçu par courriel ou sur papier. Si vous ne l’avez plus, le référent ENT de "
        "votre établissement peut vous aider : adressez-vous à lui via votre professeur principal."
    )


class NoEmailAddress(DomainError):
    message = (
        "Aucune adresse de messagerie n’est associée à ce compte : le lien ne peut pas vous être "
        "envoyé. Le référent ENT de votre établissement peut vous aider : adressez-vous à lui via "
        "votre professeur principal."
    )


class UnknownEmail(DomainError):
    message = "Adresse courriel inconnue. Veuillez contacter votre administrateur ENT."


class TokenInvalid(DomainError):
    message = (
        "Ce lien de réinitialisation n’est plus valable : il a expiré, a déjà servi ou a été "
        "remplacé par un lien plus récent."
    )


class ResetAlreadyDone(DomainError):
    """This browser completed the reset with this link already (a retry after an unclear answer)."""

    message = (
        "Votre mot de passe a déjà été modifié avec ce lien. Connectez-vous avec votre nouveau "
        "mot de passe."
    )


class IdentifierMismatch(DomainError):
    message = "Cet identifiant ne correspond pas au compte du lien de réinitialisation."


class MailJustSent(DomainError):
    """A recovery mail left for this account or address less than the cadence ago."""

    def __init__(self):
        super().__init__()
        minutes = settings.PORTAIL_RECOVERY_MAIL_MINUTES
        self.message = (
            f"Un courriel vous a déjà été envoyé il y a moins de {minutes} minutes : il peut "
            "mettre quelques minutes à arriver. Vérifiez votre dossier de courriers indésirables. "
            f"Si vous ne le trouvez pas, vous pourrez en demander un nouveau dans {minutes} "
            "minutes."
        )


class SeveralAccounts(DomainError):
    """Several active accounts share the address: the person must give the first name."""

    message = (
        "Plusieurs comptes utilisent cette adresse de messagerie : "
        "veuillez indiquer le prénom du compte recherché."
    )


@dataclass
class ResetLink:
    """A reset link opened and checked: what the reset page keeps in the session."""

    user: User
    token: Token


@dataclass
class ReminderResult:
    sent_to: list[User] = field(default_factory=list)


def _neutral() -> bool:
    return settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES


# --- One recovery mail per cadence ------------------------------------------------------------


def _cadence_key(kind: str, value) -> str:
    # Hashed like the rate-limit keys: the cache holds no address or identifier.
    return "recovery-mail:" + hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]


def _cadence_seconds() -> int:
    return settings.PORTAIL_RECOVERY_MAIL_MINUTES * 60


def _sent_recently(users) -> bool:
    """From the audit trail: did a recovery mail leave for one of `users` within the cadence?

    The database is the record that survives a Redis restart or an eviction. With no account
    (an unknown identifier), the same indexed query runs on an id that no account has, so that
    every case costs the same.
    """
    since = timezone.now() - timedelta(seconds=_cadence_seconds())
    return Event.objects.filter(
        target_id__in=[user.pk for user in users] or [0],
        tag__in=(RESET_TAG, IDENTIFIER_TAG),
        at__gte=since,
        data__outcome="sent",
    ).exists()


def _take_mail_slot(request, key: str, users) -> bool:
    """Take the cadence slot of `key`: True when a recovery mail may leave now.

    The owner's own known device always may (and starts a new period for everybody else). Any
    other request may only if no mail left within the cadence, by the audit trail (the record)
    and by the cache, whose add is atomic (SET NX on Redis): of two requests at the same instant,
    one mail leaves.
    """
    if any(is_known_device(request, user) for user in users):
        with contextlib.suppress(Exception):  # the cache may be down: the trail still records
            cache.set(key, 1, _cadence_seconds())
        return True
    recent = _sent_recently(users)
    try:
        # Asked even when the trail already said no: every case makes the same round trips.
        added = bool(cache.add(key, 1, _cadence_seconds()))
    except Exception:  # the cache is unreachable: the audit trail decides alone
        log.warning("recovery cadence: cache unavailable, decided by the audit trail alone")
        added = True
    return added and not recent


def _give_back_mail_slot(key: str) -> None:
    with contextlib.suppress(Exception):  # unreachable cache: the slot expires by itself
        cache.delete(key)


def _touch_mail_slot(key: str) -> None:
    """The work a refused case does in place of the cadence check, so that it costs the same."""
    _sent_recently([])
    with contextlib.suppress(Exception):
        cache.add(key + ":none", 1, 1)


def _writes_alike(inserts: int) -> None:
    """Neutral mode: index lookups standing for the rows a sent case inserts, inside the same
    transaction, so that every case makes as many database round trips (on a loaded machine
    each one costs more than what it does)."""
    for _ in range(inserts):
        Token.objects.filter(digest=tokens.digest("alike", tokens.new_url_token())).exists()


def _work_alike(name: str, context: dict) -> None:
    """Neutral mode, a refused case: render and seal the mail a sent case queues, then drop it,
    so that the CPU work does not tell the cases apart (issue 7 §3: equal work on every path)."""
    context = {"base_url": settings.PORTAIL_BASE_URL, **context}
    for part in ("subject.txt", "txt", "html"):
        sealing.seal("recovery.alike", render_to_string(f"mail/{name}.{part}", context))


# --- Lost password ----------------------------------------------------------------------------


def _reset_refusal(user):
    """(the DomainError, the audit outcome) that refuses a reset mail to `user`; None if none."""
    if user is None:
        return UnknownUser(), "unknown"
    if user.state == State.BLOCKED:
        return AccountBlocked(), "blocked"
    if not user.is_active:  # a leaver past the grace period: nothing to recover
        return AccountDeactivated(), "deactivated"
    if user.state != State.ACTIVE:
        return AccountNotActivated(), "not_activated"
    if not user.email:  # an account made active by hand, without the first connection
        return NoEmailAddress(), "no_email"
    return None, "sent"


def _work_alike_reset(user, identifier: str) -> None:
    secret = tokens.new_url_token()
    tokens.digest(Token.Purpose.RESET, secret)
    _work_alike(
        "password_reset",
        {
            "first_name": getattr(user, "first_name", ""),
            "identifier": identifier,
            "link": settings.PORTAIL_BASE_URL + reverse("recovery:reset_link", args=[secret]),
            "minutes": settings.PORTAIL_RESET_LINK_MINUTES,
        },
    )


def request_password_reset(request, typed_identifier: str, *, by_referent: bool = False) -> User:
    """Send a reset link to the account's address. Older links stay valid until one is used.

    `by_referent`: asked from the console by a référent (logged in, second factor, audited),
    who may be sitting with the pupil: no cadence, and delivered at once in every mode.
    Raises UnknownUser, AccountNotActivated, NoEmailAddress, AccountBlocked, AccountDeactivated
    or MailJustSent.
    """
    identifier = fold_identifier(typed_identifier)
    if not by_referent:
        # Each request may send an email: counted before anything is looked up, on the address
        # alone (the view asked for the challenge over budget, before calling this).
        throttle.count_address_request(request, "recovery")
    user = User.objects.filter(identifier=identifier).first() if identifier else None
    refusal, outcome = _reset_refusal(user)
    key = _cadence_key("account", user.pk if user is not None else identifier)
    if refusal is not None:
        _touch_mail_slot(key)
        if _neutral():
            _work_alike_reset(user, identifier)
        with transaction.atomic():
            if _neutral():
                _writes_alike(2)  # a sent case inserts the token and the mail
            if user is None:
                record(RESET_TAG, request=request, subject=identifier, outcome=outcome)
            else:
                record(RESET_TAG, request=request, target=user, outcome=outcome)
        raise refusal
    if not by_referent and not _take_mail_slot(request, key, [user]):
        if _neutral():
            _work_alike_reset(user, identifier)
        with transaction.atomic():
            if _neutral():
                _writes_alike(2)
            record(RESET_TAG, request=request, target=user, outcome="too_soon")
        raise MailJustSent

    now = timezone.now()
    secret = tokens.new_url_token()
    try:
        with transaction.atomic():
            Token.objects.create(
                user=user,
                purpose=Token.Purpose.RESET,
                digest=tokens.digest(Token.Purpose.RESET, secret),
                expires_at=now + timedelta(minutes=settings.PORTAIL_RESET_LINK_MINUTES),
            )
            # Built from the configured base URL, never from the request's Host header.
            link = settings.PORTAIL_BASE_URL + reverse("recovery:reset_link", args=[secret])
            send_template(
                "password_reset",
                user.email,
                {
                    "first_name": user.first_name,
                    "identifier": user.identifier,
                    "link": link,
                    "minutes": settings.PORTAIL_RESET_LINK_MINUTES,
                },
                # Neutral mode: queued only, so that no answer waits on the relay.
                deliver_now=by_referent or not _neutral(),
            )
            record(RESET_TAG, request=request, target=user, outcome="sent")
    except Exception:
        _give_back_mail_slot(key)  # nothing left: the owner may ask again at once
        raise
    return user


def _account_may_reset(user) -> bool:
    return user.state == State.ACTIVE and user.is_active


def open_reset_link(request, secret: str) -> ResetLink:
    """Spend the emailed link and carry on with a fresh secret that only this session holds.

    The emailed secret dies here: whoever reads it later (an access log, a forwarded mail) finds
    a dead link. The fresh row keeps the link's age and expiry. A browser that opens its own
    spent link again goes back to its form (or is told the reset is done).
    Raises TokenInvalid or ResetAlreadyDone. (Over the address's "reset" budget, the view asks
    untrusted devices for the challenge before calling this.)
    """
    link_digest = tokens.digest(Token.Purpose.RESET, secret)
    fresh = None
    with transaction.atomic():
        token = (
            Token.objects.select_for_update()
            .filter(purpose=Token.Purpose.RESET, digest=link_digest)
            .first()
        )
        if token is not None and token.is_usable() and _account_may_reset(token.user):
            token.used_at = timezone.now()
            token.save(update_fields=["used_at"])
            fresh = tokens.new_url_token()
            continuation = Token.objects.create(
                user=token.user,
                purpose=Token.Purpose.RESET,
                digest=tokens.digest(SESSION_PURPOSE, fresh),
                created_at=token.created_at,
                expires_at=token.expires_at,
            )
    if fresh is None:
        if token is not None and request.session.get(SESSION_RESET_OPENED) == link_digest:
            if request.session.get(SESSION_RESET_DONE) == token.user_id:
                raise ResetAlreadyDone
            return current_reset_link(request)  # its own link, opened twice: the same form
        throttle.count_address_request(request, "reset")
        record("account.password.reset_link_refused", request=request)
        raise TokenInvalid
    request.session.cycle_key()  # a fresh session id for the page that sets a password
    request.session[SESSION_RESET_TOKEN] = fresh
    request.session[SESSION_RESET_USER] = token.user_id
    request.session[SESSION_RESET_OPENED] = link_digest
    request.session.pop(SESSION_RESET_DONE, None)
    return ResetLink(token.user, continuation)


def current_reset_link(request) -> ResetLink:
    """The reset link carried by this session, still usable; else TokenInvalid (or
    ResetAlreadyDone when this session has just used it)."""
    secret = request.session.get(SESSION_RESET_TOKEN)
    if not secret:
        if request.session.get(SESSION_RESET_DONE):
            raise ResetAlreadyDone
        raise TokenInvalid
    token = (
        Token.objects.select_related("user")
        .filter(purpose=Token.Purpose.RESET, digest=tokens.digest(SESSION_PURPOSE, secret))
        .first()
    )
    if (
        token is None
        or not token.is_usable()
        or not _account_may_reset(token.user)
        or token.user_id != request.session.get(SESSION_RESET_USER)
    ):
        raise TokenInvalid
    return ResetLink(token.user, token)


def forget_reset_link(request) -> None:
    request.session.pop(SESSION_RESET_TOKEN, None)
    request.session.pop(SESSION_RESET_USER, None)


def reset_password(request, typed_identifier: str, new_password: str) -> User:
    """Set the new password of the link's account; every link of the account dies (the older
    ones with it), every other session ends.

    The new password may be the same as the old one (the region's help page says so).
    Raises TokenInvalid, ResetAlreadyDone, IdentifierMismatch or WeakPassword.
    """
    link = current_reset_link(request)
    user = link.user
    if fold_identifier(typed_identifier) != user.identifier:
        throttle.count_address_request(request, "reset")
        raise IdentifierMismatch
    with transaction.atomic():
        token = Token.objects.select_for_update().get(pk=link.token.pk)
        if not token.is_usable():  # another request used it meanwhile
            raise TokenInvalid
        token.used_at = timezone.now()
        token.save(update_fields=["used_at"])
        # Policy check, every session of the account ends, every other reset link dies (the
        # older ones, and the newer ones too: they were asked for the password set now).
        set_new_password(request, user, new_password, tag="account.password.reset")
        send_template(
            "password_changed",
            user.email,
            {
                "first_name": user.first_name,
                "identifier": user.identifier,
                "changed_at": timezone.localtime(token.used_at).strftime("%d/%m/%Y à %H:%M"),
            },
        )
    forget_reset_link(request)
    request.session[SESSION_RESET_DONE] = user.pk
    return user


# --- Lost identifier --------------------------------------------------------------------------


def _same_first_name(a: str, b: str) -> bool:
    # Forgive case, accents, spaces and hyphens: "Marie-Ève" is "marie eve".
    return identifier_part(a) == identifier_part(b)


def _accounts_of(folded: str) -> list[User]:
    """Every account of the address, whatever its state: one exact match on the indexed
    email_folded (no case-insensitive scan), the same query for every case."""
    if not folded:
        return []
    accounts = list(
        User.objects.filter(email_folded=folded).prefetch_related("structures").order_by("pk")
    )
    if not accounts:  # the structures query the prefetch makes when accounts exist
        User.structures.through.objects.filter(user_id=0).exists()
    return accounts


def _usable(user) -> bool:
    return user.state == State.ACTIVE and user.deactivated_at is None


def identifier_candidates(email: str) -> list[User]:
    """The active accounts that gave this address at their first connection."""
    return [u for u in _accounts_of(fold_email(email)) if _usable(u)]


def _reminder_entry(user) -> dict:
    return {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "identifier": user.identifier,
        "schools": ", ".join(sorted(s.name for s in user.structures.all())),
    }


def send_identifier_reminder(request, email: str, *, first_name: str | None = None):
    """Email the identifiers of the address's accounts, to that address.

    One account: its identifier. Several (a parent and the children): in the default mode the
    first name is asked (SeveralAccounts), and the mail carries every identifier bearing that
    first name, each with its school, or says that none does; the answer of that step is the
    same whatever was typed, so nobody learns which first names or schools exist there. In the
    neutral mode, the page must not reveal that several accounts exist, so one mail lists every
    account of the address (whose owner gave it at each first connection).

    Raises UnknownEmail, AccountBlocked, SeveralAccounts or MailJustSent.
    """
    folded = fold_email(email)
    throttle.count_address_request(request, "recovery")
    accounts = _accounts_of(folded)
    candidates = [u for u in accounts if _usable(u)]
    key = _cadence_key("address", folded)
    if not candidates:
        _touch_mail_slot(key)
        if _neutral():
            entry = {"first_name": "", "last_name": "", "identifier": folded, "schools": ""}
            _work_alike("identifier_reminder", {"accounts": [entry], "by_first_name": False})
        blocked = next((u for u in accounts if u.state == State.BLOCKED), None)
        with transaction.atomic():
            if _neutral():
                _writes_alike(1)  # a sent case inserts the mail
            if blocked is not None:
                record(IDENTIFIER_TAG, request=request, target=blocked, outcome="blocked")
            else:
                record(IDENTIFIER_TAG, request=request, subject=folded, outcome="unknown")
        raise AccountBlocked if blocked is not None else UnknownEmail

    chosen = candidates
    if len(candidates) > 1 and not _neutral():
        if first_name is None:
            raise SeveralAccounts
        chosen = [u for u in candidates if _same_first_name(u.first_name, first_name)]
    if not _take_mail_slot(request, key, candidates):
        with transaction.atomic():
            if _neutral():
                _writes_alike(1)
            record(IDENTIFIER_TAG, request=request, subject=folded, outcome="too_soon")
        raise MailJustSent
    try:
        with transaction.atomic():
            send_template(
                "identifier_reminder",
                candidates[0].email,
                {
                    "accounts": [_reminder_entry(u) for u in chosen],
                    "by_first_name": first_name is not None,
                },
                deliver_now=not _neutral(),  # as for reset links
            )
            for user in chosen:
                record(IDENTIFIER_TAG, request=request, target=user, outcome="sent")
            if not chosen:
                record(IDENTIFIER_TAG, request=request, subject=folded, outcome="no_match")
    except Exception:
        _give_back_mail_slot(key)
        raise
    return ReminderResult(sent_to=chosen)
