"""Domain operations of the directory that are not imports: functions (who administers what)
and what happens to leavers."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portail.accounts.models import Token, User
from portail.accounts.services import DomainError
from portail.audit.services import record
from portail.sso import services as sso_services

from .models import Function, is_regional_admin

# Arrêté du 30 novembre 2006 modifié (ENT personal data), art. 6: the data of a person who has
# left is kept at most three months. We erase at 90 days, whatever the grace period.
ERASE_AFTER_DAYS = 90
CHUNK = 1000


@dataclass
class LeaversResult:
    deactivated: int
    erased: int


@transaction.atomic
def process_leavers(now=None) -> LeaversResult:
    """Deactivate leavers after PORTAIL_LEAVER_GRACE_DAYS; erase them after ERASE_AFTER_DAYS.

    Deactivation: the account can no longer log in (User.is_active), every session ends, codes
    and reset links die. Erasure deletes the account and what hangs on it (links, memberships,
    tokens, functions); the audit trail keeps only its internal id (no name, no identifier).
    """
    now = now or timezone.now()
    grace = timedelta(days=min(settings.PORTAIL_LEAVER_GRACE_DAYS, ERASE_AFTER_DAYS))

    to_deactivate = list(
        User.objects.filter(
            leaving_since__isnull=False,
            leaving_since__lte=now - grace,
            deactivated_at__isnull=True,
        ).values_list("id", flat=True)
    )
    # September: a third of a lycée's pupils leave at once, so in chunks, in bulk.
    for i in range(0, len(to_deactivate), CHUNK):
        chunk = to_deactivate[i : i + CHUNK]
        users = [User(pk=pk, deactivated_at=now) for pk in chunk]
        for user in users:
            user.end_all_sessions()  # every session of the account dies at its next request
        User.objects.bulk_update(users, ["session_stamp", "deactivated_at"])
        Token.objects.filter(user_id__in=chunk).delete()
        # bulk_update sends no post_save: end what single sign-on handed out (CAS tickets, OIDC
        # tokens) here, as the sso signal does when one account is blocked.
        sso_services.revoke_everything_for(chunk)

    to_erase = list(
        User.objects.filter(
            leaving_since__isnull=False,
            leaving_since__lte=now - timedelta(days=ERASE_AFTER_DAYS),
        ).values_list("id", flat=True)
    )
    for i in range(0, len(to_erase), CHUNK):
        User.objects.filter(pk__in=to_erase[i : i + CHUNK]).delete()
    if to_deactivate or to_erase:
        record(
            "directory.leavers",
            subject="process-leavers",
            deactivated=len(to_deactivate),
            erased=len(to_erase),
            deactivated_ids=to_deactivate[:1000],
            erased_ids=to_erase[:1000],
        )
    return LeaversResult(deactivated=len(to_deactivate), erased=len(to_erase))


class NotAllowed(DomainError):
    message = "Seul un administrateur régional peut nommer ou retirer un référent ENT."


def _require_regional_admin(actor):
    if not is_regional_admin(actor):
        raise NotAllowed


@transaction.atomic
def appoint_referent(actor, user, structure, *, request=None) -> Function:
    """Make `user` a référent ENT of `structure` (only a regional admin may)."""
    _require_regional_admin(actor)
    function, created = Function.objects.get_or_create(
        user=user, role=Function.Role.REFERENT, structure=structure
    )
    if created:
        record(
            "directory.referent.appointed",
            request=request,
            actor=actor,
            target=user,
            structure=structure.uai,
        )
    return function


@transaction.atomic
def dismiss_referent(actor, user, structure, *, request=None) -> bool:
    _require_regional_admin(actor)
    deleted, _ = Function.objects.filter(
        user=user, role=Function.Role.REFERENT, structure=structure
    ).delete()
    if deleted:
        record(
            "directory.referent.dismissed",
            request=request,
            actor=actor,
            target=user,
            structure=structure.uai,
        )
    return bool(deleted)


@transaction.atomic
def make_regional_admin(user, *, actor=None, request=None) -> Function:
    """Bootstrap or delegate the regional function (from the command line, or by another
    regional admin)."""
    if actor is not None:
        _require_regional_admin(actor)
    function, created = Function.objects.get_or_create(
        user=user, role=Function.Role.REGIONAL_ADMIN, structure=None
    )
    if created:
        record("directory.regional_admin.appointed", request=request, actor=actor, target=user)
    return function
