"""The front door's throttling (issue 7): nobody can lock anybody out, a school is not one attacker.

Real parts only: the Django test client posts the real login form, counters live in the real
database and cache, challenges are solved with the same SHA-256 search the browser runs.
"""

import base64
import json
from types import SimpleNamespace

import altcha
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory, override_settings

from portail.accounts.models import State
from portail.accounts.services import set_new_password
from portail.audit.models import Event
from portail.security import devices, ratelimit, throttle
from portail.security.addresses import client_address, parse_networks, parse_school_networks
from portail.security.models import LoginFailures, UsedChallenge
from tests.helpers import STRONG_PASSWORD, WRONG, login, text

pytestmark = pytest.mark.django_db

LOCKED = "Trop d'essais infructueux pour ce compte"
CHALLENGE = "une vérification automatique de votre navigateur"
NEW_PASSWORD = "tortue violette clavier lanterne"


def fail(client, identifier="jean.dupont", times=1, **extra):
    for _ in range(times):
        response = login(client, identifier, "pas le bon mot de passe", **extra)
        assert response.status_code == 200
    return response


def owners_phone(identifier="jean.dupont", password=STRONG_PASSWORD):
    """A browser where the owner logged in once: it carries her device cookie."""
    phone = Client()
    assert login(phone, identifier, password).status_code == 302
    assert phone.cookies[devices.COOKIE_NAME].value
    phone.post("/auth/logout")
    return phone


# --- 1. Nobody can lock anybody out ------------------------------------------------------------


def test_classmate_locks_untrusted_devices_but_never_the_owners_known_phone(active_user):
    phone = owners_phone()
    classmate = Client()
    fail(classmate, times=5)
    refused = login(classmate, "jean.dupont", STRONG_PASSWORD)  # even the right password waits
    page = text(refused)
    assert refused.status_code == 200 and LOCKED in page
    assert "patienter 2 minutes" in page and "« Besoin d'aide ? »" in page
    assert "référent ENT" in page and 'href="/auth/help">Besoin d\'aide ?</a>' in page
    # A new untrusted browser is locked too: the lock belongs to the account's untrusted devices.
    assert LOCKED in text(login(Client(), "jean.dupont", STRONG_PASSWORD))
    # The owner's phone is not: her right password opens her account.
    assert login(phone, "jean.dupont", STRONG_PASSWORD).status_code == 302


def test_the_lock_page_is_the_login_page_with_its_help_link(active_user):
    classmate = Client()
    fail(classmate, times=5)
    page = text(login(classmate, "jean.dupont", "encore faux"))
    assert LOCKED in page
    for still_there in ("Identifiant", "Mot de passe", "Besoin d'aide ?", "Connexion"):
        assert still_there in page


def test_failures_from_the_owners_known_device_count_for_that_device_alone(active_user):
    phone = owners_phone()
    fail(phone, times=5)
    assert LOCKED in text(login(phone, "jean.dupont", STRONG_PASSWORD))  # this phone waits
    row = LoginFailures.objects.get(user=active_user)
    assert row.device == devices.device_key(_request_with(phone)) and row.consecutive == 5
    # ...and no other device does: the untrusted counter never moved.
    assert login(Client(), "jean.dupont", STRONG_PASSWORD).status_code == 302


def test_a_locked_attempt_costs_no_password_check_and_is_audited(active_user, monkeypatch):
    classmate = Client()
    fail(classmate, times=5)
    checks = []
    monkeypatch.setattr(
        type(active_user), "check_password", lambda self, raw: checks.append(raw) or True
    )
    assert LOCKED in text(login(classmate, "jean.dupont", STRONG_PASSWORD))
    assert checks == []
    assert Event.objects.filter(tag="account.login.locked", target=active_user).count() == 1


def test_an_unknown_identifier_locks_alike_so_the_lock_tells_nothing(db):
    visitor = Client()
    fail(visitor, "personne.inconnue", times=5)
    assert LOCKED in text(login(visitor, "personne.inconnue", "x"))


def test_owners_password_reset_clears_the_lock(active_user):
    fail(Client(), times=5)
    assert LOCKED in text(login(Client(), "jean.dupont", STRONG_PASSWORD))
    set_new_password(None, active_user, NEW_PASSWORD, tag="account.password.reset")
    assert not LoginFailures.objects.filter(user=active_user).exists()
    assert login(Client(), "jean.dupont", NEW_PASSWORD).status_code == 302


def test_a_password_change_that_is_not_a_reset_keeps_the_counters(active_user):
    fail(Client(), times=5)
    set_new_password(None, active_user, NEW_PASSWORD, tag="account.password.changed")
    assert LOCKED in text(login(Client(), "jean.dupont", NEW_PASSWORD))


def test_referent_unblock_clears_the_lock(active_user, school):
    from portail.console.services import block_account, unblock_account
    from tests.helpers import account

    referent = account("anne.martin", "Anne", "Martin", structures=[school])
    fail(Client(), times=5)
    request = RequestFactory().post("/console/")
    request.user = referent
    block_account(request, active_user)
    unblock_account(request, active_user)
    active_user.refresh_from_db()
    assert active_user.state == State.ACTIVE
    assert throttle.account_is_locked(active_user) is False
    assert login(Client(), "jean.dupont", STRONG_PASSWORD).status_code == 302


def test_delays_grow_and_25_failures_a_day_is_the_cap(settings):
    now = 1_000_000.0
    consecutive, recent, until = 0, [], 0
    delays = []
    for i in range(8):
        consecutive, recent, until = throttle._after_failure(consecutive, recent, now + i)
        delays.append(round((until - (now + i)) / 60) if until else 0)
    # CNIL 2022-100 (cas n° 2): nothing before 5 failures, then more than a minute, growing.
    assert delays == [0, 0, 0, 0, 2, 4, 8, 16]
    # 25 failures inside 24 hours: the 26th waits until the oldest leaves the sliding day.
    consecutive, recent = 0, [now + i * 60 for i in range(24)]
    consecutive, recent, until = throttle._after_failure(0, recent, now + 24 * 60)
    assert consecutive == 1 and until == now + 24 * 3600
    # Sliding: failures older than 24 hours no longer count.
    later = now + 24 * 3600 + 30 * 60
    _, recent, until = throttle._after_failure(0, recent, later)
    assert len(recent) < 25 and until == 0


def test_a_success_resets_the_consecutive_count_of_that_device(active_user):
    browser = Client()
    fail(browser, times=4)
    assert login(browser, "jean.dupont", STRONG_PASSWORD).status_code == 302
    assert LoginFailures.objects.get(user=active_user, device="").consecutive == 0


# --- 2. A school is not one attacker: client address, budgets, challenge -----------------------


def test_client_address_is_the_rightmost_untrusted_hop():
    trusted = parse_networks("127.0.0.1/8, 10.0.0.0/8", variable="T")
    # The client wrote 6.6.6.6 itself; our two proxies vouch for 203.0.113.7.
    assert client_address("127.0.0.1", "6.6.6.6, 203.0.113.7, 10.1.2.3", trusted) == ("203.0.113.7")
    # An untrusted peer's header is not believed at all.
    assert client_address("198.51.100.1", "203.0.113.7", trusted) == "198.51.100.1"
    # Only trusted hops: the leftmost one is the client.
    assert client_address("127.0.0.1", "10.0.0.9", trusted) == "10.0.0.9"
    # Not an address: counted against the proxy that passed it on.
    assert client_address("127.0.0.1", "1.2.3.4, n'importe quoi", trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", "1.2.3.4, junk, 10.0.0.2", trusted) == "10.0.0.2"
    assert client_address("127.0.0.1", "[2001:db8::1]", trusted) == "2001:db8::1"


@override_settings(PORTAIL_BEHIND_PROXY=True)
def test_an_invalid_forwarded_for_is_counted_against_the_proxy_never_a_500(active_user):
    for junk in ("pas-une-adresse", "1.2.3.4, <script>", "999.1.1.1", ",,,", "unknown"):
        response = login(
            Client(), "jean.dupont", "faux", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=junk
        )
        assert response.status_code == 200 and WRONG in text(response), junk
    events = Event.objects.filter(tag="account.login.failed")
    assert events.count() == 5 and set(events.values_list("ip", flat=True)) == {"127.0.0.1"}
    assert ratelimit.count_of("login:address", "ip:127.0.0.1") == 5
    assert LoginFailures.objects.get(user=active_user).consecutive == 5


@override_settings(
    PORTAIL_BEHIND_PROXY=True,
    PORTAIL_TRUSTED_PROXIES=parse_networks("127.0.0.1/32, 10.0.0.0/8", variable="T"),
)
def test_a_chain_of_trusted_proxies_gives_the_school_address(active_user):
    fail(Client(), HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7, 10.0.0.2")
    assert Event.objects.get(tag="account.login.failed").ip == "203.0.113.7"


@override_settings(
    PORTAIL_BEHIND_PROXY=True,
    PORTAIL_SCHOOL_NETWORKS=parse_school_networks("203.0.113.0/28=Lycée Claude Monet"),
)
def test_a_declared_school_network_is_named_in_the_audit_and_has_a_school_budget(active_user):
    from django.conf import settings

    fail(Client(), HTTP_X_FORWARDED_FOR="203.0.113.5")
    event = Event.objects.get(tag="account.login.failed")
    assert event.data["network"] == "Lycée Claude Monet"
    assert ratelimit.count_of("login:school", "school:Lycée Claude Monet") == 1
    assert ratelimit.count_of("login:address", "ip:203.0.113.5") == 0
    assert (
        settings.PORTAIL_RATE_LIMITS["login:school"][0]
        > 10 * (settings.PORTAIL_RATE_LIMITS["login:address"][0])
    )


def test_school_networks_setting_is_parsed_and_bad_input_named():
    schools = parse_school_networks("203.0.113.0/28=Lycée Monet, Paris; 2001:db8::/48=Collège")
    assert [label for _, label in schools] == ["Lycée Monet, Paris", "Collège"]
    with pytest.raises(ImproperlyConfigured, match="CIDR=Label"):
        parse_school_networks("203.0.113.0/28")
    with pytest.raises(ImproperlyConfigured, match="not an address"):
        parse_school_networks("lycee=Lycée")


def over_budget(settings, n=3):
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "login:address": (n, 900)}
    settings.PORTAIL_CHALLENGE_MAX_NUMBER = 2000  # quick to solve in a test
    flooder = Client()
    for i in range(n):
        fail(flooder, f"junk.{i}")


def solve(page_text):
    """What challenge.js does: the number whose SHA-256 after the salt is the challenge."""
    start = page_text.index('<script id="portail-challenge" type="application/json">')
    raw = page_text[start:].split(">", 1)[1].split("</script>", 1)[0]
    data = json.loads(raw)
    solution = altcha.solve_challenge_v1(
        data["challenge"], data["salt"], data["algorithm"], data["maxNumber"]
    )
    payload = {**data, "number": solution.number}
    payload.pop("maxNumber")
    return base64.b64encode(json.dumps(payload).encode()).decode()


def test_an_address_over_budget_gets_a_challenge_not_a_refusal(active_user, settings):
    over_budget(settings)
    pupil = Client()
    page = pupil.get("/auth/login")
    assert page.status_code == 200 and "portail-challenge" in text(page)
    assert "Une vérification de sécurité automatique est nécessaire" in text(page)
    assert "activez-le dans votre navigateur" in text(page)  # the <noscript> sentence
    # Without a solution the password is not even checked, nothing is counted.
    before = Event.objects.filter(tag="account.login.failed").count()
    answer = login(pupil, "jean.dupont", STRONG_PASSWORD)
    assert answer.status_code == 200 and CHALLENGE in text(answer)
    assert Event.objects.filter(tag="account.login.failed").count() == before
    # Solved: the right password gets in.
    solution = solve(text(answer))
    ok = pupil.post(
        "/auth/login",
        {"identifier": "jean.dupont", "password": STRONG_PASSWORD, "altcha": solution},
    )
    assert ok.status_code == 302 and ok["Location"] == "/"


def test_a_solved_challenge_serves_once(active_user, settings):
    over_budget(settings)
    first, second = Client(), Client()
    solution = solve(text(first.get("/auth/login")))
    data = {"identifier": "jean.dupont", "password": "mauvais", "altcha": solution}
    assert WRONG in text(first.post("/auth/login", data))
    replay = second.post("/auth/login", {**data, "password": STRONG_PASSWORD})
    assert replay.status_code == 200 and CHALLENGE in text(replay)
    assert UsedChallenge.objects.count() == 1


def test_a_forged_or_garbled_solution_is_refused_without_a_500(active_user, settings):
    over_budget(settings)
    solution = solve(text(Client().get("/auth/login")))
    data = json.loads(base64.b64decode(solution))
    forged = {**data, "number": data["number"] + 1}
    for bad in (
        base64.b64encode(json.dumps(forged).encode()).decode(),
        base64.b64encode(json.dumps({**data, "signature": "0" * 64}).encode()).decode(),
        "%%%",
        "A" * 5000,
        base64.b64encode(b"[1, 2]").decode(),
    ):
        answer = Client().post(
            "/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD, "altcha": bad}
        )
        assert answer.status_code == 200 and CHALLENGE in text(answer)


def test_a_known_device_skips_the_challenge(active_user, settings):
    phone = owners_phone()
    over_budget(settings)
    assert "portail-challenge" not in text(phone.get("/auth/login"))
    assert login(phone, "jean.dupont", STRONG_PASSWORD).status_code == 302


def test_a_device_known_for_another_account_does_not_skip_it_for_this_one(
    active_user, school, settings
):
    from tests.helpers import account

    account("marie.curie", "Marie", "Curie", structures=[school], password=STRONG_PASSWORD)
    attacker = owners_phone("marie.curie")  # his own account, his own device cookie
    over_budget(settings)
    answer = login(attacker, "jean.dupont", STRONG_PASSWORD)
    assert CHALLENGE in text(answer)


def test_require_challenge_is_usable_by_other_views(active_user, settings):
    request = RequestFactory().get("/")
    request.client_ip = "192.0.2.10"
    assert throttle.require_challenge(request) is False
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "login:address": (2, 900)}
    throttle.count_address_failure(request, 2)
    assert throttle.require_challenge(request) is True
    assert throttle.passes_challenge(request) is False


# --- Audit, equal work, cache outages ----------------------------------------------------------


def test_the_audit_keeps_no_text_of_an_unknown_identifier(active_user):
    for typed in ("MonMotDePasse!", "mon.motdepasse2024", "mon.motdepasse2024"):
        login(Client(), typed, "peu importe")
    subjects = list(
        Event.objects.filter(tag="account.login.failed")
        .order_by("pk")
        .values_list("subject", flat=True)
    )
    assert all(s.startswith("inconnu:") for s in subjects)
    assert subjects[1] == subjects[2] != subjects[0]  # one unknown name correlates
    dump = json.dumps(list(Event.objects.values()), default=str).lower()
    assert "motdepasse" not in dump
    # An existing account is named, by its id.
    login(Client(), "jean.dupont", "faux")
    assert Event.objects.filter(tag="account.login.failed", target=active_user).exists()


def test_every_kind_of_account_costs_one_argon2_computation(
    active_user, pending_pupil, monkeypatch
):
    import argon2

    pupil, _code = pending_pupil
    blocked = active_user
    calls = []
    real_hash, real_verify = argon2.low_level.hash_secret, argon2.PasswordHasher.verify
    monkeypatch.setattr(
        argon2.low_level, "hash_secret", lambda *a, **k: calls.append(1) or real_hash(*a, **k)
    )
    monkeypatch.setattr(
        argon2.PasswordHasher, "verify", lambda *a, **k: calls.append(1) or real_verify(*a, **k)
    )

    def cost(identifier):
        calls.clear()
        login(Client(), identifier, "pas le bon")
        return len(calls)

    assert cost("personne.inconnue") == 1
    assert cost(pupil.identifier) == 1
    assert cost("jean.dupont") == 1
    blocked.state = State.BLOCKED
    blocked.save()
    assert cost("jean.dupont") == 1
    blocked.state = State.ACTIVE
    blocked.password = "legacy_md5$$" + "0" * 32  # a migrated account's fast legacy hash
    blocked.save()
    assert cost("jean.dupont") == 1


class BrokenCache:
    """A cache whose server went away: every call raises, as the Redis client does."""

    def __getattr__(self, name):
        def broken(*args, **kwargs):
            raise ConnectionError("Redis is down")

        return broken


def test_a_cache_outage_never_raises_and_keeps_the_account_lock(active_user, monkeypatch):
    monkeypatch.setattr(ratelimit, "cache", BrokenCache())
    monkeypatch.setattr(throttle, "cache", BrokenCache())
    browser = Client()
    for _ in range(5):
        assert WRONG in text(login(browser, "jean.dupont", "faux"))
    # The account counter is in the database: the lock holds without the cache.
    assert LOCKED in text(login(browser, "jean.dupont", STRONG_PASSWORD))
    assert WRONG in text(login(browser, "personne.inconnue", "faux"))
    # The console's second factor refuses rather than allow unlimited guessing.
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit("console-otp:user", 1)


def test_sliding_window_does_not_reset_all_at_once(monkeypatch, settings):
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "test:rule": (10, 60)}
    clock = [6000.0 + 50]  # 50 s into a 60-second bucket
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: clock[0]))
    for _ in range(10):
        ratelimit.add("test:rule", "x")
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.check("test:rule", "x")
    clock[0] = 6000.0 + 70  # a fixed window would have reset 10 s ago, with 10 fresh tries
    assert 8 <= ratelimit.count_of("test:rule", "x") < 9  # 10 x (50/60 of the bucket still in)
    ratelimit.add("test:rule", "x")
    ratelimit.add("test:rule", "x")
    with pytest.raises(ratelimit.RateLimited) as exc:
        ratelimit.check("test:rule", "x")
    assert 1 <= exc.value.retry_after <= 60
    clock[0] += exc.value.retry_after  # as long as it said to wait
    ratelimit.check("test:rule", "x")
    clock[0] = 6000.0 + 185  # two buckets later: forgotten
    assert ratelimit.count_of("test:rule", "x") == 0


def _request_with(client):
    request = RequestFactory().get("/")
    request.COOKIES = {k: v.value for k, v in client.cookies.items()}
    return request


def test_device_cookie_is_signed_bound_httponly_lax_and_long_lived(active_user, settings):
    browser = Client()
    response = login(browser, "jean.dupont", STRONG_PASSWORD)
    cookie = response.cookies[devices.COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["secure"]
    assert int(cookie["max-age"]) == settings.PORTAIL_DEVICE_COOKIE_DAYS * 86400
    request = _request_with(browser)
    assert devices.is_known_device(request, active_user)
    assert devices.device_key(request) and "jean" not in cookie.value
    # Tampered: not a known device any more.
    tampered = _request_with(browser)
    tampered.COOKIES[devices.COOKIE_NAME] = cookie.value[:-2] + "xx"
    assert not devices.is_known_device(tampered, active_user)
    assert devices.device_key(tampered) is None


def test_the_429_page_offers_the_help_link(rf):
    from portail.security.views import rate_limited

    request = rf.get("/auth/help")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    response = rate_limited(request, ratelimit.RateLimited(90))
    page = text(response)
    assert response.status_code == 429 and response["Retry-After"] == "90"
    assert 'href="/auth/help">Besoin d\'aide ?</a>' in page and "référent ENT" in page
