"""What the account page changes; each operation asks for the current password first."""

from django.contrib.auth import update_session_auth_hash
from django.db import transaction
from django.utils import timezone

from portail.accounts.identifiers import fold_email
from portail.accounts.models import Token
from portail.accounts.services import DomainError, set_new_password, verify_current_password
from portail.audit.services import record
from portail.mail.services import send_template


class WrongCurrentPassword(DomainError):
    message = "Le mot de passe actuel est incorrect."


def _confirm(request, user, current_password):
    # Counts failures per account (rule account:user) and raises RateLimited past the budget.
    if not verify_current_password(request, user, current_password):
        raise WrongCurrentPassword


def _notice(user):
    return {"first_name": user.first_name, "identifier": user.identifier}


def change_password(request, user, *, current_password: str, new_password: str) -> None:
    """The new password replaces the current one; the other sessions end, this one stays.

    A notice goes to the account's address: someone who took over a session cannot change the
    password unnoticed (OWASP ASVS 4.0 V2.2.3: notify after a credential change).
    """
    # Outside the transaction: a failed check's audit event must survive the refusal.
    _confirm(request, user, current_password)
    with transaction.atomic():
        _change_password(request, user, new_password)


def _change_password(request, user, new_password):
    set_new_password(request, user, new_password, tag="account.password.changed")
    if user.email:
        send_template("account_password_changed", user.email, _notice(user))
    # set_new_password rotated the session stamp: keep this session (with a fresh id).
    update_session_auth_hash(request, user)


def change_contact(request, user, *, current_password: str, email: str, phone: str) -> list[str]:
    """Save a new email and/or mobile; return what changed ("email", "phone")."""
    _confirm(request, user, current_password)  # outside the transaction, as above
    with transaction.atomic():
        return _change_contact(request, user, email, phone)


def _change_contact(request, user, email, phone):
    changed = []
    email = fold_email(email)
    if email != user.email:
        if user.email:
            # The old address learns it was replaced (OWASP ASVS 4.0 V2.2.3): a hijacked session
            # cannot quietly divert the recovery mails.
            send_template("account_email_changed", user.email, _notice(user))
        user.email = email
        changed.append("email")
        end_reset_links(user)
        # That it changed, not the addresses: the trail keeps no contact data.
        record("account.email.changed", request=request, target=user)
    if phone != user.phone:
        record(
            "account.phone.changed",
            request=request,
            target=user,
            added=not user.phone,
            removed=not phone,
        )
        user.phone = phone
        changed.append("phone")
    if changed:
        user.save(update_fields=changed)
    return changed


def end_reset_links(user) -> int:
    """Every unused reset link of the account dies: it was sent to an address no longer its own
    (a link in the old mailbox must not open the account after the owner moved away from it)."""
    return Token.objects.filter(
        user=user, purpose=Token.Purpose.RESET, used_at__isnull=True
    ).update(used_at=timezone.now())


# --- Connections and sessions ------------------------------------------------------------------

# « Mes dernières connexions »: the last ten, as the audit trail recorded them.
RECENT_LOGINS = 10


def recent_logins(user, limit: int = RECENT_LOGINS) -> list[dict]:
    """The account's last logins: when, the device (« Chrome sur Android »), the school network.

    No address is shown, not even the user's own: a shared family computer would tell one
    member where another logged in from.
    """
    from portail.audit.models import Event

    from .devices import describe

    events = (
        Event.objects.filter(target=user, tag="account.login")
        .order_by("-at", "-id")
        .values("at", "user_agent", "data")[:limit]
    )
    return [
        {
            "at": event["at"],
            "device": describe(event["user_agent"]),
            "place": (event["data"] or {}).get("network", ""),
        }
        for event in events
    ]
