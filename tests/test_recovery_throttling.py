"""Recovery behind the login's front door (issue 7 §2): a flooding pupil slows the school's
untrusted browsers down by a proof of work, never shuts « Besoin d'aide ? » for them; and the
login's answer to an already used activation code.

Real parts: the Django test client posts the real forms, budgets live in the real cache, mails in
the real queue, challenges are solved with the SHA-256 search challenge.js runs.
"""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from portail.accounts.models import State, Token
from portail.audit.models import Event
from portail.mail.models import OutgoingMail
from portail.recovery import services
from portail.recovery.views import CHALLENGE_MESSAGE, SESSION_PENDING_LINK
from portail.security import ratelimit, tokens
from portail.security.addresses import parse_school_networks
from portail.security.models import UsedChallenge
from portail.typography import normalised as text_of
from tests.helpers import STRONG_PASSWORD, WRONG, account, login, text
from tests.test_throttling import owners_phone, solve

pytestmark = pytest.mark.django_db

LOST_PASSWORD = "/auth/lost-password"
LOST_IDENTIFIER = "/auth/lost-identifier"
RESET = "/auth/reset/"
EMAIL = "jean.dupont@example.org"
LINK_PREFIX = "https://ent.example.test/auth/reset/"
NEW_PASSWORD = "lampadaire vert mirabelle trottinette"
WIDGET = "portail-challenge"
ALREADY_ACTIVATED = "Votre compte est déjà activé, connectez-vous avec votre nouveau mot de passe."


@pytest.fixture
def small_budgets(settings):
    """Budgets a test can spend quickly; a challenge quick to solve."""
    settings.PORTAIL_RATE_LIMITS = {
        **settings.PORTAIL_RATE_LIMITS,
        "recovery:address": (5, 900),
        "reset:address": (3, 900),
    }
    settings.PORTAIL_CHALLENGE_MAX_NUMBER = 2000


def flood(client=None, n=20):
    """A pupil sending junk lost-password requests, never solving a challenge."""
    client = client or Client()
    answers = [client.post(LOST_PASSWORD, {"identifier": f"junk.{i}"}) for i in range(n)]
    assert {a.status_code for a in answers} <= {200, 302}  # never a 429
    return answers


def mails_to(address):
    return OutgoingMail.objects.filter(to=address).count()


# --- Lost password: the flooder does not stop a classmate --------------------------------------


def test_the_flooder_does_not_stop_a_classmates_reset_request(active_user, small_budgets):
    answers = flood()
    served = [a for a in answers if services.UnknownUser.message in text(a)]
    challenged = [a for a in answers if CHALLENGE_MESSAGE in text(a)]
    # The budget's worth was served (unknown identifiers: nothing sent), the rest only challenged.
    assert len(served) == 5 and len(challenged) == 15
    assert all(CHALLENGE_MESSAGE in text(a) and WIDGET in text(a) for a in challenged)
    assert Event.objects.filter(tag=services.RESET_TAG).count() == 5

    classmate = Client()  # same address (127.0.0.1), another browser
    page = classmate.get(LOST_PASSWORD)
    assert page.status_code == 200 and WIDGET in text(page)
    assert "nécessaire avant l'envoi de votre demande" in text(page)
    sent = classmate.post(
        LOST_PASSWORD, {"identifier": "jean.dupont", "altcha": solve(text(page))}, follow=True
    )
    assert services.RESET_SENT_MESSAGE in text(sent)
    assert mails_to(EMAIL) == 1


def test_over_budget_a_request_without_solution_is_not_served(active_user, small_budgets):
    flood(n=5)
    answer = Client().post(LOST_PASSWORD, {"identifier": "jean.dupont"})
    assert answer.status_code == 200 and CHALLENGE_MESSAGE in text(answer)
    assert 'value="jean.dupont"' in text(answer)  # the identifier stays typed
    assert mails_to(EMAIL) == 0
    assert not Event.objects.filter(tag=services.RESET_TAG, target=active_user).exists()


def test_a_replayed_solution_is_refused(active_user, small_budgets):
    flood(n=5)
    first = Client()
    solution = solve(text(first.get(LOST_PASSWORD)))
    ok = first.post(LOST_PASSWORD, {"identifier": "personne.inconnue", "altcha": solution})
    assert ok.status_code == 200 and services.UnknownUser.message in text(ok)
    replay = Client().post(LOST_PASSWORD, {"identifier": "jean.dupont", "altcha": solution})
    assert replay.status_code == 200 and CHALLENGE_MESSAGE in text(replay)
    assert mails_to(EMAIL) == 0 and UsedChallenge.objects.count() == 1


def test_a_known_device_skips_the_challenge_and_spends_no_budget(active_user, small_budgets):
    phone = owners_phone()
    flood(n=5)
    assert WIDGET not in text(phone.get(LOST_PASSWORD))
    for _ in range(3):
        phone.post(LOST_PASSWORD, {"identifier": "jean.dupont"})
    assert mails_to(EMAIL) == 3  # the owner's own device is never held back (cadence included)
    assert ratelimit.count_of("recovery:address", "ip:127.0.0.1") == 5


def test_no_refusal_ever_whatever_the_flood(active_user, small_budgets):
    answers = flood(n=60)
    assert 429 not in {a.status_code for a in answers}


def test_the_decision_does_not_depend_on_the_account_in_the_neutral_mode(
    active_user, pending_pupil, small_budgets, settings
):
    settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES = True
    flood(n=5)
    pages = {}
    for identifier in ("personne.inconnue", pending_pupil[0].identifier, "jean.dupont"):
        page = text(Client().post(LOST_PASSWORD, {"identifier": identifier}))
        # Alike but for the challenge's own random data, the CSRF token and the identifier typed.
        page = re.sub(r'<script id="portail-challenge".*?</script>', "", page, flags=re.S)
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)
        pages[identifier] = text_of(page.replace(identifier, "X"))
    assert len(set(pages.values())) == 1
    assert CHALLENGE_MESSAGE in pages["jean.dupont"]
    # Solved, each reads the neutral answer.
    for identifier in ("personne.inconnue", "jean.dupont"):
        browser = Client()
        solution = solve(text(browser.get(LOST_PASSWORD)))
        answer = browser.post(
            LOST_PASSWORD, {"identifier": identifier, "altcha": solution}, follow=True
        )
        assert services.NEUTRAL_MESSAGE in text(answer)
    assert mails_to(EMAIL) == 1


@override_settings(
    PORTAIL_SCHOOL_NETWORKS=parse_school_networks("127.0.0.0/24=Lycée Claude Monet"),
)
def test_a_declared_school_network_has_its_school_budget(active_user, small_budgets, settings):
    flood(n=6)
    # Counted on the school's budget (200 by default), not the small per-address one.
    assert ratelimit.count_of("recovery:school", "school:Lycée Claude Monet") == 6
    assert ratelimit.count_of("recovery:address", "ip:127.0.0.1") == 0
    assert WIDGET not in text(Client().get(LOST_PASSWORD))
    school, address = (
        settings.PORTAIL_RATE_LIMITS[f"recovery:{k}"][0] for k in ("school", "address")
    )
    assert school >= 10 * address


# --- Lost identifier, both steps ----------------------------------------------------------------


def test_lost_identifier_over_budget_is_served_once_solved(active_user, small_budgets):
    flood(n=5)
    browser = Client()
    page = browser.get(LOST_IDENTIFIER)
    assert WIDGET in text(page)
    unsolved = browser.post(LOST_IDENTIFIER, {"email": EMAIL})
    assert CHALLENGE_MESSAGE in text(unsolved) and mails_to(EMAIL) == 0
    solved = browser.post(
        LOST_IDENTIFIER, {"email": EMAIL, "altcha": solve(text(unsolved))}, follow=True
    )
    assert services.IDENTIFIER_SENT_MESSAGE in text(solved)
    assert mails_to(EMAIL) == 1


def test_the_second_step_of_lost_identifier_is_served_once_solved(school, small_budgets):
    family = "famille.martin@example.org"
    account("lea.martin", "Léa", "Martin", family, [school])
    account("hugo.martin", "Hugo", "Martin", family, [school])
    browser = Client()
    browser.post(LOST_IDENTIFIER, {"email": family})  # the first step, within budget
    flood(n=5)
    page = browser.get("/auth/lost-identifier/details")
    assert WIDGET in text(page)
    sent = browser.post(
        "/auth/lost-identifier/details",
        {"first_name": "Léa", "altcha": solve(text(page))},
        follow=True,
    )
    assert services.DETAILS_SENT_MESSAGE in text(sent)
    assert mails_to(family) == 1


# --- Reset links and the reset form ---------------------------------------------------------------


def _link(active_user):
    """A reset link of `active_user`, as its mail carries it."""
    secret = tokens.new_url_token()
    Token.objects.create(
        user=active_user,
        purpose=Token.Purpose.RESET,
        digest=tokens.digest(Token.Purpose.RESET, secret),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    return RESET + secret, secret


def spend_reset_budget(n=3):
    guesser = Client()
    for i in range(n):
        assert guesser.get(f"{RESET}faux{i}").status_code == 200  # the invalid-link page


def test_over_the_reset_budget_a_link_waits_for_the_forms_challenge(active_user, small_budgets):
    path, secret = _link(active_user)
    spend_reset_budget()
    owner = Client()
    opened = owner.get(path)
    assert opened.status_code == 302 and opened["Location"] == RESET
    assert opened["Referrer-Policy"] == "no-referrer"
    # Not checked yet, and kept only sealed: the session holds no usable secret.
    assert Token.objects.get(digest=tokens.digest(Token.Purpose.RESET, secret)).used_at is None
    assert secret not in str(dict(owner.session.items()))
    assert SESSION_PENDING_LINK in owner.session
    form = owner.get(RESET)
    assert form.status_code == 200 and WIDGET in text(form)
    assert 'id="id_new_password"' in text(form)
    data = {"identifier": "jean.dupont", "new_password": NEW_PASSWORD}
    data["new_password_confirm"] = NEW_PASSWORD
    unsolved = owner.post(RESET, data)
    assert unsolved.status_code == 200 and CHALLENGE_MESSAGE in text(unsolved)
    done = owner.post(RESET, {**data, "altcha": solve(text(unsolved))})
    assert done.status_code == 302 and done["Location"] == "/auth/login"
    assert login(Client(), "jean.dupont", NEW_PASSWORD).status_code == 302


def test_a_waiting_link_that_is_not_valid_says_so_once_solved(active_user, small_budgets):
    spend_reset_budget()
    browser = Client()
    browser.get(RESET + "pas-un-vrai-lien")
    form = browser.get(RESET)
    data = {"identifier": "jean.dupont", "new_password": NEW_PASSWORD}
    answer = browser.post(
        RESET, {**data, "new_password_confirm": NEW_PASSWORD, "altcha": solve(text(form))}
    )
    assert answer.status_code == 200 and services.TokenInvalid.message in text(answer)


def test_a_known_device_opens_its_link_at_once_over_the_reset_budget(active_user, small_budgets):
    phone = owners_phone()
    path, _secret = _link(active_user)
    spend_reset_budget()
    assert phone.get(path)["Location"] == RESET
    form = phone.get(RESET)
    assert WIDGET not in text(form) and SESSION_PENDING_LINK not in phone.session
    data = {"identifier": "jean.dupont", "new_password": NEW_PASSWORD}
    done = phone.post(RESET, {**data, "new_password_confirm": NEW_PASSWORD})
    assert done.status_code == 302


@pytest.mark.django_db(transaction=True)
def test_the_flooder_does_not_stop_the_classmates_mail_and_link(
    active_user, small_budgets, smtp, settings
):
    settings.PORTAIL_BASE_URL = "https://ent.example.test"
    flood(n=30)
    spend_reset_budget()
    classmate = Client()
    solution = solve(text(classmate.get(LOST_PASSWORD)))
    classmate.post(LOST_PASSWORD, {"identifier": "jean.dupont", "altcha": solution})
    (link,) = smtp.only(to=EMAIL).links(prefix=LINK_PREFIX)
    classmate.get(urlsplit(link).path)
    form = classmate.get(RESET)
    data = {"identifier": "jean.dupont", "new_password": NEW_PASSWORD}
    done = classmate.post(
        RESET, {**data, "new_password_confirm": NEW_PASSWORD, "altcha": solve(text(form))}
    )
    assert done.status_code == 302 and done["Location"] == "/auth/login"


# --- Login with an already used activation code ----------------------------------------------------


def used_code(user, code="k7m3p9qa"):
    """The state after the first connection: the letter's code, used."""
    Token.objects.create(
        user=user,
        purpose=Token.Purpose.ACTIVATION,
        digest=tokens.digest(Token.Purpose.ACTIVATION, code),
        expires_at=timezone.now() + timedelta(days=300),
        used_at=timezone.now() - timedelta(days=2),
    )
    return code


def test_the_used_activation_code_says_the_account_is_already_activated(active_user):
    code = used_code(active_user)
    answer = login(Client(), "jean.dupont", code)
    assert answer.status_code == 200 and ALREADY_ACTIVATED in text(answer)
    assert WRONG not in text(answer)
    # Typed as on the letter, with capitals or spaces around: the same answer.
    assert ALREADY_ACTIVATED in text(login(Client(), "jean.dupont", f" {code.upper()} "))
    # Still a failure: audited and counted.
    event = Event.objects.filter(tag="account.login.failed", target=active_user).first()
    assert event.data.get("reason") == "used_activation_code"
    assert login(Client(), "jean.dupont", STRONG_PASSWORD).status_code == 302


def test_any_other_wrong_password_keeps_the_one_message(active_user, school):
    code = used_code(active_user)
    assert WRONG in text(login(Client(), "jean.dupont", "k7m3p9qb"))
    # Another account's used code, an unknown identifier: nothing is told.
    other = account("marie.curie", "Marie", "Curie", structures=[school], password=STRONG_PASSWORD)
    assert WRONG in text(login(Client(), "marie.curie", code))
    assert WRONG in text(login(Client(), "personne.inconnue", code))
    assert other.pk


def test_only_the_last_used_code_and_only_for_an_active_account(active_user):
    old = used_code(active_user, "aaaa2222")
    Token.objects.filter(user=active_user).update(used_at=timezone.now() - timedelta(days=9))
    last = used_code(active_user, "bbbb3333")
    assert WRONG in text(login(Client(), "jean.dupont", old))
    assert ALREADY_ACTIVATED in text(login(Client(), "jean.dupont", last))
    active_user.state = State.BLOCKED
    active_user.save()
    assert ALREADY_ACTIVATED not in text(login(Client(), "jean.dupont", last))


def test_the_used_code_path_costs_one_argon2_computation(active_user, monkeypatch):
    import argon2

    code = used_code(active_user)
    calls = []
    real_hash, real_verify = argon2.low_level.hash_secret, argon2.PasswordHasher.verify
    monkeypatch.setattr(
        argon2.low_level, "hash_secret", lambda *a, **k: calls.append(1) or real_hash(*a, **k)
    )
    monkeypatch.setattr(
        argon2.PasswordHasher, "verify", lambda *a, **k: calls.append(1) or real_verify(*a, **k)
    )
    for identifier in ("jean.dupont", "personne.inconnue"):
        calls.clear()
        login(Client(), identifier, code)
        assert len(calls) == 1, identifier
