import pytest
from django.urls import reverse

from portail.audit.models import Event
from tests.helpers import LOGIN, STRONG_PASSWORD, WRONG, login, text

pytestmark = pytest.mark.django_db


def test_login_page_has_the_seed_wording(client):
    page = text(client.get(LOGIN))
    for expected in [
        "Connexion",
        "Identifiant",
        "Mot de passe",
        "Se souvenir de moi",
        "Besoin d'aide ?",
        "ne comporte ni majuscule, ni accent",
        "(minuscules et chiffres)",
        'aria-label="Afficher le mot de passe"',
        'aria-pressed="false"',
    ]:
        assert expected in page, expected


def test_login_success_leads_home_with_name_profile_school(client, active_user):
    response = login(client, "jean.dupont", STRONG_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    home = text(client.get("/"))
    assert "Jean Dupont" in home and "Parent" in home and "Lycée Claude Monet" in home
    assert "Se déconnecter" in home
    assert Event.objects.filter(tag="account.login", target=active_user).exists()


def test_identifier_is_folded_spaces_capitals_accents(client, active_user):
    active_user.identifier = "elodie.dupre"
    active_user.save()
    assert login(client, "  Élodie.DUPRÉ ", STRONG_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    "identifier,password", [("jean.dupont", "wrong password!"), ("nobody.here", STRONG_PASSWORD)]
)
def test_wrong_identifier_or_password_same_message(client, active_user, identifier, password):
    response = login(client, identifier, password)
    assert response.status_code == 200
    assert WRONG in text(response)
    assert Event.objects.filter(tag="account.login.failed").count() == 1


def test_session_cookie_ends_with_browser_unless_remembered(client, active_user, settings):
    response = login(client, "jean.dupont", STRONG_PASSWORD)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert not cookie["expires"] and not cookie["max-age"]
    client.post(reverse("accounts:logout"))
    response = login(client, "jean.dupont", STRONG_PASSWORD, remember=True)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == settings.PORTAIL_REMEMBER_ME_DAYS * 86400


def test_login_issues_fresh_session_id(client, active_user, settings):
    client.get(LOGIN)
    client.session.save()
    before = client.session.session_key
    login(client, "jean.dupont", STRONG_PASSWORD)
    assert client.session.session_key != before


def test_logout_ends_session_on_server(client, active_user):
    login(client, "jean.dupont", STRONG_PASSWORD)
    from django.contrib.sessions.models import Session

    key = client.session.session_key
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get("/").status_code == 302


def test_five_failures_delay_untrusted_devices_on_the_login_page(client, active_user):
    # CNIL 2022-100 (cas n° 2): after 5 consecutive failures, a delay of more than a minute.
    for _ in range(5):
        assert login(client, "jean.dupont", "nope nope nope").status_code == 200
    response = login(client, "jean.dupont", STRONG_PASSWORD)
    assert response.status_code == 200  # the login page itself, not a dead-end 429
    page = text(response)
    assert "veuillez patienter 2 minutes" in page and "Besoin d'aide ?" in page


def test_blocked_account_sees_the_blocked_message_only_after_right_credentials(
    client, active_user, pending_pupil
):
    from portail.accounts.models import State

    blocked = "L'administrateur de votre établissement a bloqué votre accès à l'ENT."
    pupil, code = pending_pupil
    for user in (active_user, pupil):
        user.state = State.BLOCKED
        user.save()
    assert blocked not in text(login(client, "jean.dupont", "wrong password!"))
    assert blocked in text(login(client, "jean.dupont", STRONG_PASSWORD))
    # Blocked before its first connection: the activation code shows the message, opens nothing.
    response = login(client, pupil.identifier, code)
    assert response.status_code == 200 and blocked in text(response)


def test_deactivated_leaver_cannot_log_in(client, active_user):
    from django.utils import timezone

    active_user.deactivated_at = timezone.now()
    active_user.save()
    response = login(client, "jean.dupont", STRONG_PASSWORD)
    assert response.status_code == 200 and "a été désactivé" in text(response)
    assert client.get("/").status_code == 302
    assert not Event.objects.filter(tag="account.login").exists()


def test_a_password_typed_in_the_identifier_field_is_not_logged(client):
    login(client, "MonMotDePasse!", "whatever")
    subject = Event.objects.get(tag="account.login.failed").subject
    assert subject.startswith("inconnu:") and "MonMotDePasse" not in subject
    login(client, "jean.inconnu", "whatever")
    assert not Event.objects.filter(subject="jean.inconnu").exists()


def test_legacy_hash_failure_costs_one_argon2_computation_only(client, active_user, monkeypatch):
    from portail.accounts import services

    active_user.password = "legacy_md5$$" + "0" * 32  # a fast, unsalted legacy form
    active_user.save()
    calls = []
    real = services.make_password
    monkeypatch.setattr(services, "make_password", lambda p: calls.append(p) or real(p))
    login(client, "jean.dupont", "wrong password!")
    # The legacy hasher's own verify spends the one Argon2 computation; no second one here
    # (tests/test_throttling.py counts the Argon2 calls of every kind of account).
    assert calls == []


def test_a_logged_in_user_opening_the_login_page_goes_home_or_to_next(client, active_user):
    assert login(client, "jean.dupont", STRONG_PASSWORD).status_code == 302
    response = client.get(LOGIN)
    assert response.status_code == 302 and response["Location"] == "/"
    response = client.get(LOGIN + "?next=/compte/")
    assert response.status_code == 302 and response["Location"] == "/compte/"
    # Never an open redirect.
    response = client.get(LOGIN + "?next=https://evil.example.test/")
    assert response.status_code == 302 and response["Location"] == "/"


def test_a_cas_renew_still_shows_the_form_to_a_logged_in_user(client, active_user):
    from portail.sso import services as sso_services

    assert login(client, "jean.dupont", STRONG_PASSWORD).status_code == 302
    # What /cas/login?renew=true and /o/authorize?prompt=login do before sending to the login page.
    session = client.session
    session[sso_services.CREDENTIALS_ASKED_KEY] = session[sso_services.AUTH_TIME_KEY] + 1
    session.save()
    response = client.get(LOGIN + "?next=/cas/login%3Frenew%3Dtrue")
    assert response.status_code == 200 and 'name="password"' in text(response)
