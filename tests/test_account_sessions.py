"""« Mon compte »: the open sessions, « Se déconnecter de tous les autres appareils », the recent
connections — with the database session engine and with the Redis-cached one (a real
redis-server, killed in the middle)."""

import re
from html import unescape

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from portail.audit.models import Event
from portail.profile.devices import describe
from portail.profile.models import OpenSession
from portail.security.sessions import stored_session_key
from tests.helpers import STRONG_PASSWORD, login
from tests.test_faults_redis import redis_cache, redis_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
END_OTHERS = "/compte/sessions/fermer-les-autres"


def browser(user_agent):
    return Client(HTTP_USER_AGENT=user_agent)


def logged_in(client):
    return client.get("/").status_code == 200


def page(client):
    """The account page's text as read (tags removed, spaces folded)."""
    html = client.get("/compte/").content.decode()
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


@pytest.fixture(params=["database", "redis"])
def engine(request, settings):
    """Each test runs with both session engines."""
    if request.param == "redis":
        return request.getfixturevalue("redis_cache")
    settings.SESSION_ENGINE = "portail.security.sessions"
    return None


def three_devices(user):
    devices = [browser(ANDROID), browser(WINDOWS), browser(IPHONE)]
    for device in devices:
        assert login(device, user.identifier, STRONG_PASSWORD).status_code == 302
    return devices


def test_devices_describe_themselves_as_people_say_it():
    assert describe(ANDROID) == "Chrome sur Android"
    assert describe(WINDOWS) == "Firefox sur Windows"
    assert describe(IPHONE) == "Safari sur iPhone"
    assert describe("") == "Appareil inconnu"


def test_the_account_page_lists_each_open_session_with_its_device(engine, active_user):
    phone, pc, iphone = three_devices(active_user)
    text = page(phone)
    assert "Chrome sur Android (cet appareil)" in text
    assert "Firefox sur Windows" in text and "Safari sur iPhone" in text
    assert "Firefox sur Windows (cet appareil)" not in text
    assert "Se déconnecter de tous les autres appareils" in text
    assert OpenSession.objects.filter(user=active_user).count() == 3


def sessions_part(client):
    """Only « Mes appareils connectés » (the recent connections list the same devices)."""
    text = page(client)
    return text[text.index("Mes appareils connectés") : text.index("Mes dernières connexions")]


def test_ending_the_other_sessions_keeps_only_this_one(engine, active_user):
    phone, pc, iphone = three_devices(active_user)
    ended = [stored_session_key(c.cookies["portail_session"].value) for c in (pc, iphone)]
    response = phone.post(END_OTHERS)
    assert response.status_code == 302
    assert "2 autres sessions ont été fermées" in page(phone)
    assert logged_in(phone)
    assert not logged_in(pc) and not logged_in(iphone)
    # The index and the stored sessions agree: one left, the current one.
    mine = stored_session_key(phone.cookies["portail_session"].value)
    assert list(OpenSession.objects.values_list("stored_key", flat=True)) == [mine]
    assert not Session.objects.filter(session_key__in=ended).exists()
    event = Event.objects.get(tag="account.sessions.others_ended")
    assert event.target == active_user and event.data["count"] == 2
    if engine is not None:  # Redis keeps no copy of the ended sessions either
        for gone in ended:
            assert not any(k.endswith(gone) for k in engine.stored_keys())
    # Alone now: the page says so and offers no button.
    phone.post(END_OTHERS)
    text = page(phone)
    assert "Aucune autre session n’était ouverte." in text
    assert "Se déconnecter de tous les autres appareils" not in text


def test_other_accounts_sessions_are_not_touched(engine, active_user, school):
    from tests.helpers import account

    other = account("lea.martin", "Léa", "Martin", structures=[school], password=STRONG_PASSWORD)
    mine = browser(ANDROID)
    hers = browser(WINDOWS)
    login(mine, active_user.identifier, STRONG_PASSWORD)
    login(hers, other.identifier, STRONG_PASSWORD)
    mine.post(END_OTHERS)
    assert logged_in(hers) and "Firefox sur Windows" not in sessions_part(mine)


def test_logout_leaves_the_index(engine, active_user):
    phone, pc, _ = three_devices(active_user)
    pc.post("/auth/logout")
    assert OpenSession.objects.filter(user=active_user).count() == 2
    assert "Firefox sur Windows" not in sessions_part(phone)


def test_a_session_that_expired_leaves_the_list(engine, active_user):
    phone, pc, _ = three_devices(active_user)
    gone = stored_session_key(pc.cookies["portail_session"].value)
    Session.objects.filter(session_key=gone).delete()  # as clearsessions or its absolute end
    assert "Firefox sur Windows" not in sessions_part(phone)
    assert not OpenSession.objects.filter(stored_key=gone).exists()


def test_a_password_change_keeps_this_session_listed_under_its_new_key(engine, active_user):
    phone, pc, _ = three_devices(active_user)
    before = phone.cookies["portail_session"].value
    response = phone.post(
        "/compte/mot-de-passe",
        {
            "password-current_password": STRONG_PASSWORD,
            "password-new_password": "zèbre violet sous la pluie 7",
            "password-new_password2": "zèbre violet sous la pluie 7",
        },
    )
    assert response.status_code == 302
    after = phone.cookies["portail_session"].value
    assert after != before  # update_session_auth_hash gave it a new key
    assert OpenSession.objects.filter(stored_key=stored_session_key(after)).exists()
    assert not OpenSession.objects.filter(stored_key=stored_session_key(before)).exists()
    assert "Chrome sur Android (cet appareil)" in page(phone)
    # The other devices were logged out by the password change (their rows go with them).
    assert not logged_in(pc)
    assert "Firefox sur Windows" not in sessions_part(phone)


def test_the_index_survives_the_loss_of_redis(redis_cache, active_user):  # noqa: F811
    phone, pc, iphone = three_devices(active_user)
    redis_cache.kill()
    assert "Firefox sur Windows" in sessions_part(phone)
    phone.post(END_OTHERS)
    assert logged_in(phone) and not logged_in(pc) and not logged_in(iphone)
    # Redis comes back empty: nothing brings the ended sessions back.
    redis_cache.start()
    assert not logged_in(pc) and logged_in(phone)


def test_recent_connections_show_date_device_and_school_network(settings, active_user):
    from portail.security.addresses import parse_school_networks

    settings.PORTAIL_SCHOOL_NETWORKS = parse_school_networks("203.0.113.0/28=Lycée Claude Monet")
    school = browser(WINDOWS)
    login(school, active_user.identifier, STRONG_PASSWORD, REMOTE_ADDR="203.0.113.5")
    home = browser(ANDROID)
    login(home, active_user.identifier, STRONG_PASSWORD, REMOTE_ADDR="198.51.100.23")
    text = page(home)
    section = text[text.index("Mes dernières connexions") :]
    assert "Firefox sur Windows" in section and "Lycée Claude Monet" in section
    assert "Chrome sur Android" in section and "Hors établissement ou inconnu" in section
    # No address is ever shown, not even the account's own.
    assert "203.0.113.5" not in text and "198.51.100.23" not in text


def test_ending_other_sessions_needs_a_post_and_a_login(client, active_user):
    assert client.post(END_OTHERS)["Location"].startswith("/auth/login")
    client.force_login(active_user)
    assert client.get(END_OTHERS).status_code == 405


def test_a_session_opened_before_the_index_joins_it_when_the_page_is_read(engine, active_user):
    phone, pc, _ = three_devices(active_user)
    OpenSession.objects.all().delete()  # as on the day this index was deployed
    text = sessions_part(phone)
    assert "Chrome sur Android (cet appareil)" in text
    assert OpenSession.objects.count() == 1
    # The others cannot be found by account (their rows are named by a keyed hash only).
    assert "Firefox sur Windows" not in text


def test_the_migration_indexes_the_sessions_open_on_the_day_it_runs(engine, active_user):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("portail.profile.migrations.0002_index_sessions_opened_before")
    phone, pc, iphone = three_devices(active_user)
    anonymous = Client()
    anonymous.get("/auth/login")  # a session without a login stays out
    OpenSession.objects.all().delete()
    migration.index_open_sessions(apps, None)
    assert OpenSession.objects.filter(user=active_user).count() == 3
    assert OpenSession.objects.count() == 3
    phone.post(END_OTHERS)
    assert logged_in(phone) and not logged_in(pc) and not logged_in(iphone)
