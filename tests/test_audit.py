import pytest
from django.db import connection, transaction

from portail.audit.models import AppendOnlyError, Event
from portail.audit.services import record
from tests.helpers import login

pytestmark = pytest.mark.django_db


def test_events_cannot_be_changed_or_deleted_by_the_app(active_user):
    event = record("account.login", target=active_user)
    event.tag = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="database trigger is PostgreSQL's")
def test_postgres_refuses_update_and_delete_of_audit_rows(active_user):
    record("account.login", target=active_user)
    for statement in ("UPDATE audit_event SET tag = 'x'", "DELETE FROM audit_event"):
        with (
            pytest.raises(Exception, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert Event.objects.filter(tag="account.login").count() == 1


def test_login_failure_records_ip_and_user_agent_but_no_secret(client, active_user):
    login(
        client,
        "jean.dupont",
        "secret-typed-123",
        HTTP_USER_AGENT="Firefox/140",
        REMOTE_ADDR="203.0.113.9",
    )
    event = Event.objects.get(tag="account.login.failed")
    assert event.target == active_user and event.ip == "203.0.113.9"
    assert event.user_agent == "Firefox/140"
    assert "secret-typed-123" not in str(event.data) + event.subject


def test_events_about_an_account_hold_its_id_not_its_name(active_user):
    # Erasing a leaver must leave no identifier or name of his in the append-only trail.
    event = record("account.login", target=active_user, subject="jean.dupont")
    assert event.subject == "" and event.target_id == active_user.pk
    assert "jean" not in str(event.data).lower()
    assert record("account.login.failed", subject="personne.inconnue").subject == (
        "personne.inconnue"
    )
