"""Federated logins: which account, refusals, the session they open, FranceConnect links."""

from django.db import transaction
from django.utils import timezone

from portail.accounts.models import Profile, State, User
from portail.accounts.services import AccountBlocked, AccountDeactivated, DomainError
from portail.audit.services import record
from portail.security import throttle

from .hooks import PENDING_LINK, STATE
from .models import FranceConnectLink

# The AAF import's source: User.external_id is then the AAF jointure (ENTPersonJointure),
# which ÉduConnect sends to ENTs (portail.directory.imports.aaf).
AAF_SOURCE = "aaf"


class NoAccount(DomainError):
    message = (
        "Votre compte ÉduConnect est valide, mais il ne correspond à aucun compte de l’ENT. "
        "Aucun compte n’a été créé. Adressez-vous au référent ENT de votre établissement (ou "
        "de celui de votre enfant) : il vérifiera que votre compte figure dans l’annuaire de "
        "l’établissement. En attendant, vous pouvez vous connecter avec l’identifiant et le "
        "mot de passe de l’ENT s’ils vous ont été remis."
    )


def refused(request, method: str, reason: str):
    """A response or callback that failed its checks: audited (no personal data in it)."""
    record(
        "federation.franceconnect.refused"
        if method == "franceconnect"
        else "federation.educonnect.refused",
        request=request,
        reason=reason[:300],
    )


def _usable(request, user, method):
    if user.state == State.BLOCKED:
        record("account.login.blocked", request=request, target=user, method=method)
        raise AccountBlocked
    if not user.is_active:  # a leaver past the grace period
        record("account.login.deactivated", request=request, target=user, method=method)
        raise AccountDeactivated
    return user


def educonnect_account(request, facts: dict) -> User:
    """The account of the AAF jointure ÉduConnect sent; never matched by name. NoAccount,
    AccountBlocked or AccountDeactivated otherwise. A not-yet-activated account is logged in
    as it is: ÉduConnect proved the person, no activation code is needed (the letter's code
    still works later to choose a password)."""
    from .educonnect import jointure

    value = jointure(facts["attributes"])
    user = (
        User.objects.filter(external_source=AAF_SOURCE, external_id=value).first()
        if value
        else None
    )
    if user is None:
        record(
            "federation.educonnect.no_account",
            request=request,
            subject=throttle.identifier_fingerprint(value or "-"),
        )
        raise NoAccount
    return _usable(request, user, "educonnect")


def franceconnect_account(request, claims: dict, id_token: str = "") -> User | None:
    """The parent's account linked to this FranceConnect identity, or None: the identity then
    waits in the session for the password that links it (hooks.check_pending_link), with its ID
    token, so that the logout of the session the link opens also ends FranceConnect's."""
    issuer = claims["iss"]
    link = (
        FranceConnectLink.objects.select_related("user")
        .filter(issuer=issuer, sub=claims["sub"])
        .first()
    )
    if link is None:
        request.session[PENDING_LINK] = {
            "issuer": issuer,
            "sub": claims["sub"],
            "id_token": id_token,
            "at": int(timezone.now().timestamp()),
        }
        record("federation.franceconnect.unlinked_identity", request=request)
        return None
    if link.user.profile != Profile.PARENT:  # the profile changed since the link was made
        from .hooks import LinkRefused

        link.delete()
        record("federation.franceconnect.link_refused", request=request, target=link.user)
        raise LinkRefused
    FranceConnectLink.objects.filter(pk=link.pk).update(last_used_at=timezone.now())
    return _usable(request, link.user, "franceconnect")


def federated_login(request, user, *, method, remember, next_url, state):
    """The password login's own path (accounts.views.finish_login): session, remember-me,
    known device, SSO continuation to `next_url`, the audit event with its method."""
    from portail.accounts.views import finish_login

    throttle.record_login_success(request, user)
    response = finish_login(request, user, remember=remember, next_url=next_url, method=method)
    request.session[STATE] = {"method": method, **state}
    return response


@transaction.atomic
def unlink_franceconnect(request, user):
    deleted, _ = FranceConnectLink.objects.filter(user=user).delete()
    if deleted:
        record("federation.franceconnect.unlinked", request=request, target=user)
