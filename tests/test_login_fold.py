"""A login's writes folded into one PostgreSQL statement (ops.statements.later): the statement
count, the rows written (the same as the un-folded path's), nothing lost when no session is saved,
the session key retry, and PostgreSQL lost in the middle of a login."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portail.audit.models import Event
from portail.ops import statements
from portail.profile.models import OpenSession
from portail.security.sessions import stored_session_key
from tests.helpers import STRONG_PASSWORD, account, login

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the fold is PostgreSQL's (SQLite: one by one)"
)
UNFOLDED = [
    m for m in settings.MIDDLEWARE if m != "portail.ops.statements.DeferredWritesMiddleware"
]


def _statements(queries):
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_password_login_writes_in_one_statement(school):
    account("leo.martin", "Léo", "Martin", password=STRONG_PASSWORD, structures=[school])
    client = Client()
    with CaptureQueriesContext(connection) as queries:
        assert login(client, "leo.martin", STRONG_PASSWORD).status_code == 302
    sent = _statements(queries)
    writes = [sql for sql in sent if not sql.startswith("SELECT")]
    assert len(writes) == 1, "\n".join(sent)
    [write] = writes
    assert write.startswith("WITH w0 AS (UPDATE accounts_user SET last_login"), write
    for table in ("profile_opensession", '"audit_event"', '"django_session"'):
        assert table in write
    assert write.index('INSERT INTO "django_session"') > write.index('"audit_event"')
    assert len(sent) == 3, "\n".join(sent)  # the user, its failure counter, the writes
    assert not statements.pending_writes()
    assert connection.execute_wrappers == []


def _rows(client, user, login_started):
    """What a login wrote, times as offsets from the login, keys as what they name."""
    stored = stored_session_key(client.cookies["portail_session"].value)
    session = Session.objects.get(session_key=stored)
    data = session.get_decoded()
    user.refresh_from_db()
    [index] = OpenSession.objects.filter(user=user)
    [event] = Event.objects.filter(target=user, tag="account.login")
    late = timedelta(seconds=5)
    assert login_started <= user.last_login < login_started + late
    assert login_started <= index.created_at < login_started + late
    assert login_started <= event.at < login_started + late
    assert event.pk is not None
    return {
        "index": (index.stored_key == stored, index.user_agent, index.network),
        "event": (
            event.actor_id == user.pk,
            event.subject,
            str(event.ip),
            event.user_agent,
            event.data,
        ),
        "session": (
            sorted(data),
            data["_auth_user_id"] == str(user.pk),
            data.get("_session_expiry"),
            # The row's end: the session's absolute end (login + lifetime), to the second.
            round((session.expire_date - login_started).total_seconds() / 60),
        ),
        "cookie max-age": client.cookies["portail_session"]["max-age"],
        "others": (
            Session.objects.count(),
            OpenSession.objects.count(),
            Event.objects.filter(target=user).count(),
        ),
    }


def _login_rows(identifier, remember, school):
    user = account(identifier, "Léa", "Petit", password=STRONG_PASSWORD, structures=[school])
    client = Client()
    started = timezone.now()
    response = login(client, identifier, STRONG_PASSWORD, remember=remember, HTTP_USER_AGENT="UA")
    assert response.status_code == 302
    rows = _rows(client, user, started)
    Session.objects.all().delete()
    OpenSession.objects.all().delete()
    return rows


@pytest.mark.parametrize("remember", [False, True])
@pytest.mark.django_db(transaction=True)
def test_the_folded_login_writes_the_rows_of_the_unfolded_one(school, remember):
    folded = _login_rows("lea.petit", remember, school)
    with override_settings(MIDDLEWARE=UNFOLDED):  # every write at once, as before
        unfolded = _login_rows("lea.petit2", remember, school)
    assert folded == unfolded
    assert folded["event"][4] == {"remember": remember}
    assert folded["session"][2] == (settings.PORTAIL_REMEMBER_ME_DAYS * 86400 if remember else 0)


def _watched(view):
    return statements.DeferredWritesMiddleware(view)(RequestFactory().get("/"))


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_writes_left_when_the_request_ends_without_a_session_save_are_sent(active_user):
    def view(request):
        statements.later(
            "UPDATE accounts_user SET last_login = %s WHERE id = %s",
            [timezone.now(), active_user.pk],
        )
        assert statements.pending_writes()  # waiting: no session INSERT in this request
        return HttpResponse(status=500)

    with CaptureQueriesContext(connection) as queries:
        _watched(view)
    assert [q["sql"][:6] for q in queries.captured_queries] == ["UPDATE"]
    assert not statements.pending_writes() and connection.execute_wrappers == []
    active_user.refresh_from_db()
    assert active_user.last_login is not None


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_read_after_a_deferred_write_sees_it(active_user):
    seen = []

    def view(request):
        statements.later(
            "UPDATE accounts_user SET first_name = %s WHERE id = %s", ["Jeanne", active_user.pk]
        )
        active_user.refresh_from_db()
        seen.append(active_user.first_name)
        return HttpResponse()

    _watched(view)
    assert seen == ["Jeanne"]


@pytest.mark.django_db(transaction=True)
def test_nothing_waits_outside_a_request_or_inside_a_transaction(active_user):
    from django.db import transaction

    statements.later(
        "UPDATE accounts_user SET first_name = %s WHERE id = %s", ["A", active_user.pk]
    )
    assert not statements.pending_writes()

    def view(request):
        with transaction.atomic():
            statements.later(
                "UPDATE accounts_user SET first_name = %s WHERE id = %s", ["B", active_user.pk]
            )
            assert not statements.pending_writes()
        return HttpResponse()

    _watched(view)
    active_user.refresh_from_db()
    assert active_user.first_name == "B"


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_session_key_already_taken_keeps_the_writes_for_the_retry(active_user):
    taken = Session.objects.create(
        session_key="k" * 40, session_data="", expire_date=timezone.now() + timedelta(hours=1)
    )

    def view(request):
        from django.db import IntegrityError

        statements.later(
            "UPDATE accounts_user SET first_name = %s WHERE id = %s", ["Jeanne", active_user.pk]
        )
        with pytest.raises(IntegrityError):
            statements.insert(
                Session(
                    session_key=taken.session_key, session_data="", expire_date=taken.expire_date
                )
            )
        assert len(statements.pending_writes()) == 1  # nothing was written: they wait
        with CaptureQueriesContext(connection) as queries:
            statements.insert(
                Session(session_key="n" * 40, session_data="", expire_date=taken.expire_date)
            )
        assert len(queries.captured_queries) == 1
        assert queries.captured_queries[0]["sql"].startswith("WITH w0 AS (UPDATE accounts_user")
        return HttpResponse()

    _watched(view)
    active_user.refresh_from_db()
    assert active_user.first_name == "Jeanne"
    assert Session.objects.filter(session_key="n" * 40).exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_postgresql_lost_at_the_logins_write_gives_the_503_page_and_writes_nothing(
    school, monkeypatch
):
    """The connection is cut (pg_terminate_backend) just before the session's save: the one
    statement fails, the answer is the 503 page, and none of the login's rows exist (before, the
    first three were written and the session row failed). (An account without address: with
    one, the new-device check reads the audit trail, which sends last_login and the index
    first.)"""
    import psycopg

    active_user = account(
        "leo.martin", "Léo", "Martin", password=STRONG_PASSWORD, structures=[school]
    )

    from portail.security.sessions import SessionStore

    original = SessionStore.save

    def cut_then_save(self, must_create=False):
        pid = connection.connection.info.backend_pid
        with psycopg.connect(_url(), autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", [pid])
        return original(self, must_create)

    monkeypatch.setattr(SessionStore, "save", cut_then_save)
    browser = Client(raise_request_exception=False)
    response = login(browser, "leo.martin", STRONG_PASSWORD)
    assert response.status_code == 503
    assert "Service momentanément indisponible" in response.content.decode()
    connection.close()  # (the test client keeps the dead connection: Django would close it)
    monkeypatch.setattr(SessionStore, "save", original)

    active_user.refresh_from_db()
    assert active_user.last_login is None
    assert not Event.objects.filter(target=active_user, tag="account.login").exists()
    assert not OpenSession.objects.exists() and not Session.objects.exists()
    assert not statements.pending_writes()

    # Back: the next login writes everything.
    assert login(Client(), "leo.martin", STRONG_PASSWORD).status_code == 302
    active_user.refresh_from_db()
    assert active_user.last_login is not None
    assert Event.objects.filter(target=active_user, tag="account.login").count() == 1
    assert OpenSession.objects.filter(user=active_user).count() == 1


def _url():
    params = connection.get_connection_params()
    return (
        f"postgres://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', 5432)}/{params['dbname']}"
    )
