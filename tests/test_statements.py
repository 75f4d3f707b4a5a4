"""ops.statements: the compiled-once INSERT and SELECT of the login's hot path give what the ORM
gives (the same row, the same instance), on SQLite and PostgreSQL."""

import datetime

import pytest
from django.contrib.sessions.models import Session
from django.db.models import signals
from django.utils import timezone

from portail.accounts.models import User
from portail.audit.models import Event
from portail.ops import statements
from portail.security.models import LoginFailures

pytestmark = pytest.mark.django_db


def test_the_models_written_this_way_have_no_save_receivers():
    # insert() sends no pre_save/post_save: it is for models nobody listens to.
    for model in (Event, Session):
        assert not signals.pre_save.has_listeners(model)
        assert not signals.post_save.has_listeners(model)


def test_insert_writes_the_row_save_would_and_reads_back_its_id(active_user):
    at = timezone.now() - datetime.timedelta(minutes=3)
    event = Event(
        tag="account.login",
        at=at,
        target=active_user,
        actor=active_user,
        ip="2001:db8::1",
        user_agent="Firefox",
        data={"remember": True, "network": "Lycée « Curie »"},
    )
    statements.insert(event)
    assert event.pk is not None and not event._state.adding
    stored = Event.objects.get(pk=event.pk)
    assert (stored.tag, stored.at, stored.target, stored.actor, stored.ip, stored.user_agent) == (
        "account.login",
        at,
        active_user,
        active_user,
        "2001:db8::1",
        "Firefox",
    )
    assert stored.data == {"remember": True, "network": "Lycée « Curie »"}
    # The defaults are applied as save() applies them (pre_save: the time of the event).
    second = Event(tag="account.logout")
    statements.insert(second)
    assert second.pk > event.pk and Event.objects.get(pk=second.pk).subject == ""


def test_insert_refuses_a_duplicate_primary_key_as_save_does():
    from django.db import IntegrityError, transaction

    expires = timezone.now() + datetime.timedelta(hours=1)
    statements.insert(Session(session_key="k" * 40, session_data="x", expire_date=expires))
    assert Session.objects.get(session_key="k" * 40).expire_date == expires
    with pytest.raises(IntegrityError), transaction.atomic():
        statements.insert(Session(session_key="k" * 40, session_data="y", expire_date=expires))


def test_first_gives_the_orm_instance_with_converted_values(active_user):
    until = timezone.now().replace(microsecond=0) + datetime.timedelta(minutes=4)
    LoginFailures.objects.create(
        user=active_user, device="d1", consecutive=5, locked_until=until, recent=[1.5, 2.5]
    )

    def build(pk, key):
        return LoginFailures.objects.filter(user_id=pk).filter(device=key).order_by("pk")[:1]

    for _ in range(2):  # compiled at the first call, reused at the second
        row = statements.first("test.failures", build, [active_user.pk, "d1"])
        assert row == LoginFailures.objects.get(user=active_user, device="d1")
        assert (row.consecutive, row.locked_until, row.recent) == (5, until, [1.5, 2.5])
    assert statements.first("test.failures", build, [active_user.pk, "other"]) is None

    named = statements.first(
        "test.user", lambda name: User.objects.filter(identifier=name)[:1], ["jean.dupont"]
    )
    assert named == active_user and named.created_at == active_user.created_at
    assert named.get_session_auth_hash() == active_user.get_session_auth_hash()


def test_first_refuses_parameters_it_would_send_in_another_order(active_user):
    with pytest.raises(ValueError):
        statements.first(
            "test.misordered",
            # One filter() with two lookups: Django orders them by name (device before user_id).
            lambda pk, key: LoginFailures.objects.filter(user_id=pk, device=key)[:1],
            [active_user.pk, "d1"],
        )
