"""Sessions: only a keyed hash of the cookie at rest, an absolute lifetime, Redis faults tolerated."""

import io
import os
import secrets
import signal
import socket
import subprocess
import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from portail.accounts.models import Profile
from portail.security.sessions import STARTED_AT, stored_session_key
from portail.sso.models import Application, ServiceTicket, SingleLogoutRecord
from tests.conftest import enter_admin
from tests.helpers import STRONG_PASSWORD, account, login

pytestmark = pytest.mark.django_db

CAS_SERVICE = "https://notes.example.test/cas/callback"
COOKIE = "portail_session"


def cookie_of(client):
    return client.cookies[COOKIE].value


def replay(cookie_value):
    """A fresh browser that presents `cookie_value` as its session cookie."""
    other = Client()
    other.cookies[COOKIE] = cookie_value
    return other


def logged_in(client, response_to="/"):
    response = client.get(response_to)
    return response.status_code == 200


@pytest.fixture
def cas_app(db):
    return Application.objects.create(
        name="Vie scolaire",
        short_label="VS",
        url="https://notes.example.test/",
        kind=Application.Kind.CAS,
        cas_service_patterns="https://notes.example.test/",
        cas_single_logout=True,
    )


@pytest.fixture
def administrator(school):
    return account(
        "admin.region",
        "Ada",
        "Region",
        structures=[school],
        password=STRONG_PASSWORD,
        profile=Profile.PERSONNEL,
        is_staff=True,
        is_superuser=True,
    )


# --- At rest ----------------------------------------------------------------------------------


def test_a_database_dump_gives_no_working_cookie(client, active_user, administrator, cas_app):
    login(client, "jean.dupont", STRONG_PASSWORD, remember=True)
    # A CAS ticket and its single-logout record name the session too.
    response = client.get("/cas/login", {"service": CAS_SERVICE})
    assert response.status_code == 302 and "ticket=ST-" in response["Location"]
    console = Client()
    enter_admin(console, administrator)  # a console session past its second factor
    assert console.get("/admin/").status_code == 200
    cookies = [cookie_of(client), cookie_of(console)]

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    for cookie in cookies:
        assert cookie not in dump.getvalue()
    stored = list(Session.objects.values_list("session_key", flat=True))
    assert sorted(stored) == sorted(stored_session_key(c) for c in cookies)
    assert ServiceTicket.objects.get().session_key == stored_session_key(cookies[0])
    assert SingleLogoutRecord.objects.get().session_key == stored_session_key(cookies[0])
    # Whatever the dump holds, presented as a cookie, opens nothing.
    for value in stored:
        assert not logged_in(replay(value))
        assert replay(value).get("/admin/").status_code == 302
    # The real cookies still work (the test would pass vacuously otherwise).
    assert logged_in(replay(cookies[0]))
    assert replay(cookies[1]).get("/admin/").status_code == 200


def test_logout_ends_the_session_and_its_single_sign_on_rows(client, active_user, cas_app):
    login(client, "jean.dupont", STRONG_PASSWORD)
    client.get("/cas/login", {"service": CAS_SERVICE})
    cookie = cookie_of(client)
    assert SingleLogoutRecord.objects.count() == 1
    client.post("/auth/logout")
    assert not Session.objects.filter(session_key=stored_session_key(cookie)).exists()
    assert SingleLogoutRecord.objects.count() == 0  # found by the digest, deleted
    assert not logged_in(replay(cookie))


def test_end_all_sessions_ends_sessions_stored_by_digest(client, active_user):
    login(client, "jean.dupont", STRONG_PASSWORD)
    assert logged_in(client)
    active_user.end_all_sessions()
    active_user.save(update_fields=["session_stamp"])
    assert not logged_in(client)


def test_clearsessions_removes_expired_rows(client, active_user):
    login(client, "jean.dupont", STRONG_PASSWORD)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    call_command("clearsessions")
    assert not Session.objects.exists()


# --- Absolute lifetime ------------------------------------------------------------------------


def age_session(client, seconds):
    """Move the session's login `seconds` into the past, as if that much time had gone by."""
    session = client.session
    session[STARTED_AT] = session[STARTED_AT] - seconds
    session.save()
    return session[STARTED_AT]


DAY = 24 * 3600


def test_a_remembered_session_used_daily_ends_30_days_after_login(client, active_user, settings):
    assert settings.PORTAIL_REMEMBER_ME_DAYS == 30
    login(client, "jean.dupont", STRONG_PASSWORD, remember=True)
    for _day in range(29):
        started = age_session(client, DAY)
        assert logged_in(client)
        client.post("/auth/password-strength", {"password": "x"})  # some use
    # Day 29: the database row and the cookie end with the 30th day, not 30 days from now.
    end = started + 30 * DAY
    row = Session.objects.get(session_key=stored_session_key(cookie_of(client)))
    assert row.expire_date.timestamp() <= end + 1
    response = client.get("/")  # a page that saves the session: still capped
    assert response.status_code == 200
    age_session(client, DAY)
    assert not logged_in(client)
    assert client.get("/").status_code == 302  # to the login page


def test_saving_the_session_never_pushes_its_end(client, active_user, cas_app):
    login(client, "jean.dupont", STRONG_PASSWORD, remember=True)
    started = age_session(client, 29 * DAY + 23 * 3600)
    # A CAS login writes the session (its single-logout list) and sets the cookie again.
    response = client.get("/cas/login", {"service": CAS_SERVICE})
    assert "ticket=ST-" in response["Location"]
    assert int(response.cookies[COOKIE]["max-age"]) <= 3600 + 1
    row = Session.objects.get(session_key=stored_session_key(cookie_of(client)))
    assert row.expire_date.timestamp() <= started + 30 * DAY + 1


def test_a_browser_session_ends_its_hours_after_login(client, active_user, settings):
    login(client, "jean.dupont", STRONG_PASSWORD)
    age_session(client, settings.PORTAIL_SESSION_HOURS * 3600 - 60)
    assert logged_in(client)
    age_session(client, 61)
    assert not logged_in(client)


def test_logging_in_again_restarts_the_lifetime(client, active_user):
    login(client, "jean.dupont", STRONG_PASSWORD, remember=True)
    age_session(client, 31 * DAY)
    assert not logged_in(client)
    login(client, "jean.dupont", STRONG_PASSWORD, remember=True)
    assert logged_in(client)
    assert time.time() - client.session[STARTED_AT] < 60


# --- Redis down or frozen (issue 8 §2) --------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_redis():
    """A redis-server of this test's own, that the test may stop, freeze or kill."""
    binary = "/usr/bin/redis-server"
    if not os.path.exists(binary):
        if os.environ.get("CI") == "true":
            pytest.fail("CI: redis-server not installed")
        pytest.skip("redis-server not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield process, port
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.kill()
    process.wait()


@pytest.fixture
def redis_sessions(settings, own_redis):
    from django.core.cache import caches

    process, port = own_redis
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            # Short timeouts, as production's cache settings have (issue 8 §2: ≤ 100 ms).
            "OPTIONS": {"socket_timeout": 0.1, "socket_connect_timeout": 0.1},
        },
    }
    settings.SESSION_CACHE_ALIAS = "sessions"
    settings.SESSION_ENGINE = "portail.security.sessions_cached"
    yield process, port
    caches["sessions"].close()


def test_the_session_cache_holds_only_digests(client, active_user, redis_sessions):
    import redis

    _process, port = redis_sessions
    login(client, "jean.dupont", STRONG_PASSWORD)
    assert logged_in(client)
    raw = redis.Redis(port=port)
    keys = [k.decode() for k in raw.keys("*")]
    assert keys and all(stored_session_key(cookie_of(client)) in k for k in keys)
    assert not any(cookie_of(client) in k for k in keys)
    for key in keys:
        assert not logged_in(replay(key.rsplit(":", 1)[-1]))
    client.post("/auth/logout")
    assert raw.keys("*") == []
    raw.close()


@pytest.mark.parametrize("fault", ["down", "frozen"])
def test_sessions_keep_working_when_redis_fails(client, active_user, redis_sessions, fault):
    process, _port = redis_sessions
    login(client, "jean.dupont", STRONG_PASSWORD)
    assert logged_in(client)
    if fault == "down":
        process.kill()
        process.wait()
    else:
        process.send_signal(signal.SIGSTOP)
    # Read from the database, written to the database; never a 500.
    assert logged_in(client)
    other = Client()
    response = login(other, "jean.dupont", STRONG_PASSWORD)
    assert response.status_code == 302
    assert logged_in(other)
    cookie = cookie_of(other)
    assert other.post("/auth/logout").status_code == 302
    assert not logged_in(replay(cookie))


def test_the_stored_name_is_keyed_by_the_secret_key(settings):
    # Without SECRET_KEY the stored name cannot even be recomputed from a guessed session key.
    key = secrets.token_hex(16)
    before = stored_session_key(key)
    assert len(before) == 40 and key not in before
    settings.SECRET_KEY = "another-secret-key-for-this-test-only"
    assert stored_session_key(key) != before


def test_a_login_writes_its_new_session_once_and_kills_the_former_key(client, active_user):
    """Session fixation: a new key at login, the former one dead; and one INSERT for the new row
    (Django's cycle_key first checked the key was free, inserted, then the response updated it)."""
    from importlib import import_module

    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    store = import_module(settings.SESSION_ENGINE).SessionStore
    former = store()
    former["anonymous"] = "note"
    former.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = former.session_key
    with CaptureQueriesContext(connection) as queries:
        response = login(client, "jean.dupont", STRONG_PASSWORD)
    assert response.status_code == 302
    session_sql = [
        q["sql"].split(" ", 1)[0] for q in queries.captured_queries if "django_session" in q["sql"]
    ]
    assert session_sql.count("INSERT") == 1, session_sql
    assert "UPDATE" not in session_sql, session_sql
    new_key = cookie_of(client)
    assert new_key != former.session_key
    assert not Session.objects.filter(session_key=stored_session_key(former.session_key)).exists()
    assert Session.objects.filter(session_key=stored_session_key(new_key)).exists()
    assert store(new_key)["anonymous"] == "note"  # the data moved with the key
    assert client.get("/").status_code == 200
