"""What a référent may see: every console query goes through these, never through User.objects.

A référent sees the accounts of the structures he administers (directory's
`accounts_administered_by`), except the accounts that hold a function themselves: only a regional
administrator manages référents (issue 3 §1). Nor his own account. Anything else is answered 404, as if it did not exist.
"""

from django.db.models import Exists, OuterRef, Prefetch
from django.http import Http404

from portail.accounts.models import User
from portail.audit.models import Event
from portail.directory.models import (
    Function,
    SchoolClass,
    accounts_administered_by,
    is_regional_admin,
    structures_administered_by,
)


def has_console_access(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and Function.objects.filter(user=user).exists()
    )


def visible_structures(actor):
    return structures_administered_by(actor)


def visible_accounts(actor):
    # Nobody acts on his own account from the console (a regional admin could lock himself out).
    accounts = accounts_administered_by(actor).exclude(pk=actor.pk)
    if not is_regional_admin(actor):
        accounts = accounts.exclude(Exists(Function.objects.filter(user=OuterRef("pk"))))
    return accounts


def visible_classes(actor):
    return SchoolClass.objects.filter(structure__in=visible_structures(actor))


def visible_events(actor):
    """The audit trail of the accounts the actor administers."""
    return Event.objects.filter(target__in=visible_accounts(actor).values("pk"))


def with_visible_memberships(actor, accounts):
    """Prefetch each account's structures and classes, only those the actor administers.

    An account may also belong to another school (a teacher in two collèges, a parent of pupils
    in two schools): `account.structures.all()` and `account.classes.all()` then show a référent
    nothing of the other school.
    """
    structures = visible_structures(actor)
    return accounts.prefetch_related(
        Prefetch("structures", queryset=structures),
        Prefetch("classes", queryset=SchoolClass.objects.filter(structure__in=structures)),
    )


def get_visible_account(actor, pk) -> User:
    account = with_visible_memberships(actor, visible_accounts(actor).filter(pk=pk)).first()
    if account is None:
        raise Http404
    return account


def get_visible_class(actor, pk) -> SchoolClass:
    school_class = visible_classes(actor).filter(pk=pk).first()
    if school_class is None:
        raise Http404
    return school_class
