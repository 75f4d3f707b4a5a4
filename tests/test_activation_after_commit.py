"""An activation or a reset that committed is never shown as an error (issue 8 §2).

The failure is real: a trigger makes the session table refuse every write once the domain
transaction has committed (the session store being down), not a mock of the code under test.
"""

from contextlib import contextmanager
from importlib import import_module
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test import Client

from portail.accounts.models import State, User
from portail.activation import services
from portail.mail.models import OutgoingMail
from portail.recovery import services as recovery
from tests.helpers import LOGIN, STRONG_PASSWORD, login, text

pytestmark = pytest.mark.django_db(transaction=True)
ACTIVATION = "/auth/activation"
NEW_PASSWORD = "girafe tambour citron vélo"
ALREADY = "Votre compte est déjà activé, connectez-vous avec votre nouveau mot de passe."
FORM = {
    "new_password": NEW_PASSWORD,
    "new_password2": NEW_PASSWORD,
    "email": "elodie.dupre@example.org",
    "phone": "",
    "charter": "on",
}


def _session_table() -> str:
    return import_module(settings.SESSION_ENGINE).SessionStore.get_model_class()._meta.db_table


@contextmanager
def session_store_down():
    """Every write to the session table fails (as a session store that went away does)."""
    table = _session_table()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION test_session_store_down() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'session store down'; END $$"
            )
            cursor.execute(
                f'CREATE TRIGGER test_session_down BEFORE INSERT OR UPDATE ON "{table}" '
                "FOR EACH ROW EXECUTE FUNCTION test_session_store_down()"
            )
        else:  # SQLite: a trigger reading a table that does not exist fails at run time
            for event in ("INSERT", "UPDATE"):
                # Our own table name and keyword, no input.
                sql = f'CREATE TRIGGER test_session_down_{event} BEFORE {event} ON "{table}" '
                cursor.execute(sql + "BEGIN SELECT * FROM session_store_is_down; END")  # noqa: S608
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f'DROP TRIGGER test_session_down ON "{table}"')
                cursor.execute("DROP FUNCTION test_session_store_down()")
            else:
                for event in ("INSERT", "UPDATE"):
                    cursor.execute(f"DROP TRIGGER test_session_down_{event}")


@pytest.fixture
def activating(pending_pupil):
    user, code = pending_pupil
    client = Client(raise_request_exception=False)
    assert login(client, user.identifier, code)["Location"] == ACTIVATION
    return client, user, code


def test_activation_committed_while_the_session_store_fails_is_not_an_error(activating, caplog):
    client, user, code = activating
    with session_store_down():
        response = client.post(ACTIVATION, FORM)
        assert response.status_code == 302 and response["Location"] == LOGIN
        page = text(client.get(LOGIN))
    assert services.ACTIVATED_LOG_IN_MESSAGE in page
    assert "activation committed" in caplog.text  # the injected failure did happen
    user.refresh_from_db()
    assert user.state == State.ACTIVE and user.check_password(NEW_PASSWORD)
    assert SESSION_KEY not in client.session

    # The form sent again (the person saw no clear answer): a clear message, not "expired".
    retry = client.post(ACTIVATION, FORM, follow=True)
    assert ALREADY in text(retry)
    assert login(client, user.identifier, NEW_PASSWORD)["Location"] == "/"


def test_a_lost_answer_then_the_same_form_again_says_the_account_is_active(activating):
    client, user, _code = activating
    former = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert client.post(ACTIVATION, FORM)["Location"] == "/"
    # The answer (and its new session cookie) never reached the browser: it retries with the
    # cookie it had.
    client.cookies[settings.SESSION_COOKIE_NAME] = former
    retry = client.post(ACTIVATION, FORM, follow=True)
    assert retry.redirect_chain[-1][0] == LOGIN
    assert ALREADY in text(retry)
    assert SESSION_KEY not in client.session
    assert User.objects.get(pk=user.pk).check_password(NEW_PASSWORD)


def test_reset_committed_while_the_session_store_fails_is_not_an_error(smtp, active_user, caplog):
    client = Client(raise_request_exception=False)
    client.post("/auth/lost-password", {"identifier": "jean.dupont"})
    link = smtp.only(to=active_user.email).links(prefix="https://ent.example.test/auth/reset/")[0]
    assert client.get(urlsplit(link).path)["Location"] == "/auth/reset/"
    form = {
        "identifier": "jean.dupont",
        "new_password": NEW_PASSWORD,
        "new_password_confirm": NEW_PASSWORD,
    }
    with session_store_down():
        response = client.post("/auth/reset/", form)
        assert response.status_code == 302 and response["Location"] == LOGIN
        page = text(client.get(LOGIN))
    assert recovery.PASSWORD_CHANGED_MESSAGE in page
    assert "reset committed" in caplog.text
    assert User.objects.get(pk=active_user.pk).check_password(NEW_PASSWORD)
    assert not User.objects.get(pk=active_user.pk).check_password(STRONG_PASSWORD)
    assert OutgoingMail.objects.filter(subject__contains="modifié").exists()
