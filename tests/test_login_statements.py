"""A login's statements (issue 8 §1, bench/login.py): what a clean login does not need to write,
and that the counters still start again from zero after a failure."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portail.security.models import LoginFailures
from tests.helpers import STRONG_PASSWORD, login

pytestmark = pytest.mark.django_db


def test_a_clean_login_resets_no_counter_and_a_login_after_a_failure_does(client, active_user):
    with CaptureQueriesContext(connection) as queries:
        assert login(client, "jean.dupont", STRONG_PASSWORD).status_code == 302
    writes = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith(("UPDATE", "INSERT"))
    ]
    assert not [sql for sql in writes if "security_loginfailures" in sql], writes

    client.logout()
    assert login(client, "jean.dupont", "mauvais mot de passe").status_code == 200
    assert LoginFailures.objects.get(user=active_user, device="").consecutive == 1
    assert login(client, "jean.dupont", STRONG_PASSWORD).status_code == 302
    assert LoginFailures.objects.get(user=active_user, device="").consecutive == 0


def _statements(queries):
    return [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


@pytest.mark.django_db(transaction=True)
def test_a_login_from_a_new_browser_stays_within_its_statement_budget(client, school):
    """bench/login.py's path: a pupil without address (so no new-device mail to consider), a
    browser without device cookie, no session yet. Before the login
    branch: 11 statements and 4 transaction commands (the session index's SELECTs, its
    update_or_create, the session INSERT in a transaction of its own); now the user, its failure
    counter, last_login, the index (two statements on SQLite), the audit row and the session
    row, each in autocommit on SQLite; on PostgreSQL the writes are one statement
    (ops.statements.later, tests/test_login_fold.py): the user, its counter, the writes."""
    from tests.helpers import account

    active_user = account(
        "leo.martin", "Léo", "Martin", password=STRONG_PASSWORD, structures=[school]
    )
    with CaptureQueriesContext(connection) as queries:
        assert login(client, "leo.martin", STRONG_PASSWORD).status_code == 302
    counted = _statements(queries)
    budget = 3 if connection.vendor == "postgresql" else 7
    assert len(counted) <= budget, "\n".join(counted)
    if connection.vendor == "postgresql":
        sent = [q["sql"] for q in queries.captured_queries]
        assert not [sql for sql in sent if sql.startswith(("BEGIN", "SAVEPOINT"))], sent
    # Nothing was skipped: the session, its index row, the audit row and last_login are written.
    from django.contrib.sessions.models import Session

    from portail.audit.models import Event
    from portail.profile.models import OpenSession
    from portail.security.sessions import stored_session_key

    stored = stored_session_key(client.cookies["portail_session"].value)
    assert Session.objects.filter(session_key=stored).exists()
    assert OpenSession.objects.get(stored_key=stored).user == active_user
    assert Event.objects.filter(target=active_user, tag="account.login").count() == 1
    active_user.refresh_from_db()
    assert active_user.last_login is not None


@pytest.mark.django_db(transaction=True)
def test_a_login_forgets_the_accounts_dead_sessions_and_keeps_the_live_ones(active_user, school):
    """The index's one statement: ended sessions of this account leave it, live ones and other
    accounts' rows stay, the new session joins it."""
    from django.contrib.sessions.models import Session
    from django.test import Client
    from django.utils import timezone

    from portail.profile.models import OpenSession
    from portail.security.sessions import stored_session_key
    from tests.helpers import account

    other = account("marie.curie", "Marie", "Curie", password=STRONG_PASSWORD, structures=[school])
    browsers = [Client() for _ in range(3)]
    for browser in browsers[:2]:
        assert login(browser, "jean.dupont", STRONG_PASSWORD).status_code == 302
    outsider = Client()
    assert login(outsider, "marie.curie", STRONG_PASSWORD).status_code == 302
    ended, alive = (stored_session_key(b.cookies["portail_session"].value) for b in browsers[:2])
    Session.objects.filter(session_key=ended).update(expire_date=timezone.now())
    Session.objects.filter(
        session_key=stored_session_key(outsider.cookies["portail_session"].value)
    ).delete()  # another account's dead row: not this login's business

    assert (
        login(browsers[2], "jean.dupont", STRONG_PASSWORD, HTTP_USER_AGENT="Firefox").status_code
        == 302
    )
    new = stored_session_key(browsers[2].cookies["portail_session"].value)
    assert set(
        OpenSession.objects.filter(user=active_user).values_list("stored_key", flat=True)
    ) == {
        alive,
        new,
    }
    assert OpenSession.objects.get(stored_key=new).user_agent == "Firefox"
    assert OpenSession.objects.filter(user=other).count() == 1
