"""« Besoin d'aide ? »: reset links for a lost password, reminders for a lost identifier.

Every operation counts its rate limits before it looks anything up, records what happened in the
audit log (never the token), and schedules its email inside the transaction that changes the data.
The French sentences live on the typed errors; the views only choose where to show them.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
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
from portail.audit.services import record
from portail.mail.services import send_template
from portail.security import ratelimit, tokens

# Shown whatever the account when PORTAIL_NEUTRAL_RECOVERY_MESSAGES is on (the hardened mode):
# the answer must not tell whether an identifier or an address exists.
NEUTRAL_MESSAGE = (
    "Si un compte correspond, un courriel vient d'être envoyé à l'adresse de messagerie donnée "
    "lors de la première connexion. Pensez à vérifier votre dossier de courriers indésirables."
)
RESET_SENT_MESSAGE = (
    "Un courriel contenant les instructions pour changer votre mot de passe vient d'être envoyé "
    "à l'adresse de messagerie donnée lors de la première connexion. S'il n'arrive pas d'ici "
    "quelques minutes, vérifiez votre dossier de courriers indésirables."
)
IDENTIFIER_SENT_MESSAGE = (
    "Un courriel contenant votre identifiant vient d'être envoyé à cette adresse de messagerie. "
    "S'il n'arrive pas d'ici quelques minutes, vérifiez votre dossier de courriers indésirables."
)
PASSWORD_CHANGED_MESSAGE = (
    "Votre mot de passe a été modifié. Vous pouvez dès maintenant vous connecter avec votre "
    "nouveau mot de passe."
)

# Session keys of the reset page: the token leaves the URL for the session before the form shows.
# The session holds the token's stored digest, not the secret itself.
SESSION_RESET_TOKEN = "reset_token"
SESSION_RESET_USER = "reset_user_id"  # also read by the strength meter (/auth/password-strength)
# Session key of the lost-identifier second step: the address typed at the first step.
SESSION_IDENTIFIER_EMAIL = "identifier_email"


class UnknownUser(DomainError):
    message = "Utilisateur inconnu, veuillez vérifier la saisie de votre identifiant."


class AccountNotActivated(DomainError):
    message = (
        "Votre compte n'est pas encore activé : aucune adresse de messagerie n'y est encore "
        "associée. Connectez-vous depuis l'écran d'accueil avec votre identifiant et le code "
        "d'activation reçu par courriel ou sur papier. Si vous ne l'avez plus, le référent ENT de "
        "votre établissement peut vous aider : adressez-vous à lui via votre professeur principal."
    )


class NoEmailAddress(DomainError):
    message = (
        "Aucune adresse de messagerie n'est associée à ce compte : le lien ne peut pas vous être "
        "envoyé. Le référent ENT de votre établissement peut vous aider : adressez-vous à lui via "
        "votre professeur principal."
    )


class UnknownEmail(DomainError):
    message = "Adresse courriel inconnue. Veuillez contacter votre administrateur ENT."


class TokenInvalid(DomainError):
    message = (
        "Ce lien de réinitialisation n'est plus valable : il a expiré, a déjà servi ou a été "
        "remplacé par un lien plus récent."
    )


class IdentifierMismatch(DomainError):
    message = "Cet identifiant ne correspond pas au compte du lien de réinitialisation."


class UnknownFirstName(DomainError):
    message = (
        "Aucun compte utilisant cette adresse de messagerie ne porte ce prénom. "
        "Veuillez vérifier la saisie du prénom."
    )


class SeveralAccounts(DomainError):
    """Several active accounts share the address: the person must say which one is theirs."""

    def __init__(self, *, structures=(), ask_structure=False, first_name_given=False):
        super().__init__()
        self.structures = list(structures)  # [(pk, name)] of the candidates' schools
        self.ask_structure = ask_structure
        if first_name_given:
            self.message = (
                "Plusieurs comptes de cette adresse portent ce prénom : "
                "veuillez choisir l'établissement."
            )
        else:
            self.message = (
                "Plusieurs comptes utilisent cette adresse de messagerie : "
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


def _client_ip(request):
    return getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR")


def _neutral() -> bool:
    return settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES


# --- Lost password ----------------------------------------------------------------------------


def request_password_reset(request, typed_identifier: str) -> User:
    """Send a reset link to the account's address; every older unused link of the account dies.

    Raises UnknownUser, AccountNotActivated, NoEmailAddress, AccountBlocked or RateLimited.
    """
    identifier = fold_identifier(typed_identifier)
    # Each request may send an email: counted before anything is looked up.
    ratelimit.count({"recovery:ip": _client_ip(request), "recovery:identifier": identifier})
    user = User.objects.filter(identifier=identifier).first() if identifier else None
    tag = "account.password.reset_requested"
    if user is None:
        record(tag, request=request, subject=identifier, outcome="unknown")
        raise UnknownUser
    if user.state == State.BLOCKED:
        record(tag, request=request, target=user, outcome="blocked")
        raise AccountBlocked
    if not user.is_active:  # a leaver past the grace period: nothing to recover
        record(tag, request=request, target=user, outcome="deactivated")
        raise AccountDeactivated
    if user.state != State.ACTIVE:
        record(tag, request=request, target=user, outcome="not_activated")
        raise AccountNotActivated
    if not user.email:  # an account made active by hand, without the first connection
        record(tag, request=request, target=user, outcome="no_email")
        raise NoEmailAddress

    now = timezone.now()
    secret = tokens.new_url_token()
    with transaction.atomic():
        Token.objects.filter(user=user, purpose=Token.Purpose.RESET, used_at__isnull=True).update(
            used_at=now
        )
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
        )
        record(tag, request=request, target=user, outcome="sent")
    return user


def _usable_reset_token(token_digest: str) -> Token:
    token = (
        Token.objects.select_related("user")
        .filter(purpose=Token.Purpose.RESET, digest=token_digest)
        .first()
    )
    if (
        token is None
        or not token.is_usable()
        or token.user.state != State.ACTIVE
        or not token.user.is_active
    ):
        raise TokenInvalid
    return token


def open_reset_link(request, secret: str) -> ResetLink:
    """Check the link's token and move it into the session, so that it leaves the URL.

    Raises TokenInvalid or ratelimit.RateLimited.
    """
    ratelimit.guard({"reset:ip": _client_ip(request)})
    try:
        token = _usable_reset_token(tokens.digest(Token.Purpose.RESET, secret))
    except TokenInvalid:
        ratelimit.hit("reset:ip", _client_ip(request))
        record("account.password.reset_link_refused", request=request)
        raise
    request.session.cycle_key()  # a fresh session id for the page that sets a password
    request.session[SESSION_RESET_TOKEN] = token.digest
    request.session[SESSION_RESET_USER] = token.user_id
    return ResetLink(token.user, token)


def current_reset_link(request) -> ResetLink:
    """The reset link moved into this session, still usable; else TokenInvalid."""
    token_digest = request.session.get(SESSION_RESET_TOKEN)
    if not token_digest:
        raise TokenInvalid
    token = _usable_reset_token(token_digest)
    if token.user_id != request.session.get(SESSION_RESET_USER):
        raise TokenInvalid
    return ResetLink(token.user, token)


def forget_reset_link(request) -> None:
    request.session.pop(SESSION_RESET_TOKEN, None)
    request.session.pop(SESSION_RESET_USER, None)


def reset_password(request, typed_identifier: str, new_password: str) -> User:
    """Set the new password of the link's account; the link dies, every other session ends.

    The new password may be the same as the old one (the region's help page says so).
    Raises TokenInvalid, IdentifierMismatch, WeakPassword or ratelimit.RateLimited.
    """
    ratelimit.guard({"reset:ip": _client_ip(request)})
    link = current_reset_link(request)
    user = link.user
    if fold_identifier(typed_identifier) != user.identifier:
        ratelimit.hit("reset:ip", _client_ip(request))
        raise IdentifierMismatch
    with transaction.atomic():
        token = Token.objects.select_for_update().get(pk=link.token.pk)
        if not token.is_usable():  # another request used it meanwhile
            raise TokenInvalid
        token.used_at = timezone.now()
        token.save(update_fields=["used_at"])
        # Policy check, every session of the account ends, other reset links die, audited.
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
    return user


# --- Lost identifier --------------------------------------------------------------------------


def _same_first_name(a: str, b: str) -> bool:
    # Forgive case, accents, spaces and hyphens: "Marie-Ève" is "marie eve".
    return identifier_part(a) == identifier_part(b)


def structures_of(users) -> list[tuple[int, str]]:
    seen = {}
    for user in users:
        for structure in user.structures.all():
            seen[structure.pk] = structure.name
    return sorted(seen.items(), key=lambda item: item[1])


def identifier_candidates(email: str) -> list[User]:
    """The active accounts that gave this address at their first connection."""
    folded = fold_email(email)
    if not folded:
        return []
    active = (
        User.objects.filter(state=State.ACTIVE, deactivated_at__isnull=True)
        .prefetch_related("structures")
        .order_by("pk")
    )
    # Activation and the account page store addresses folded: the exact match uses the index.
    # An address typed otherwise elsewhere (admin, import) is still found, at a scan's cost.
    return list(active.filter(email=folded)) or list(active.filter(email__iexact=folded))


def first_names_repeat(users) -> bool:
    names = [identifier_part(u.first_name) for u in users]
    return len(names) != len(set(names))


def send_identifier_reminder(
    request, email: str, *, first_name: str | None = None, structure_id: int | None = None
) -> ReminderResult:
    """Email the identifier of the account that uses this address.

    When several accounts share the address (a parent and the children), the first name, then
    the school where first names repeat, tell which one; only that identifier is sent. In the
    neutral mode, the page must not reveal that several accounts exist, so one email lists every
    account of the address (whose owner gave it at each first connection).

    Raises UnknownEmail, AccountBlocked, SeveralAccounts, UnknownFirstName or RateLimited.
    """
    folded = fold_email(email)
    ratelimit.count({"recovery:ip": _client_ip(request), "recovery:email": folded})
    tag = "account.identifier.requested"
    candidates = identifier_candidates(folded)
    if not candidates:
        blocked = User.objects.filter(email=folded, state=State.BLOCKED).first()
        if folded and blocked is not None:
            record(tag, request=request, target=blocked, outcome="blocked")
            raise AccountBlocked
        record(tag, request=request, subject=folded, outcome="unknown")
        raise UnknownEmail

    chosen = candidates
    if len(candidates) > 1 and not _neutral():
        if first_name is None:
            raise SeveralAccounts(
                structures=structures_of(candidates),
                ask_structure=first_names_repeat(candidates),
            )
        chosen = [u for u in candidates if _same_first_name(u.first_name, first_name)]
        if not chosen:
            record(tag, request=request, subject=folded, outcome="unknown_first_name")
            raise UnknownFirstName
        if len(chosen) > 1 and structure_id is not None:
            chosen = [u for u in chosen if any(s.pk == structure_id for s in u.structures.all())]
            if not chosen:
                record(tag, request=request, subject=folded, outcome="unknown_first_name")
                raise UnknownFirstName
        if len(chosen) > 1 and structure_id is None:
            raise SeveralAccounts(
                structures=structures_of(candidates), ask_structure=True, first_name_given=True
            )

    with transaction.atomic():
        send_template(
            "identifier_reminder",
            chosen[0].email,
            {
                "accounts": [
                    {
                        "first_name": u.first_name,
                        "last_name": u.last_name,
                        "identifier": u.identifier,
                    }
                    for u in chosen
                ],
            },
        )
        for user in chosen:
            record(tag, request=request, target=user, outcome="sent")
    return ReminderResult(sent_to=chosen)
