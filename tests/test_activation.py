import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.utils import timezone

from portail.accounts.models import State, Token, User
from portail.accounts.provisioning import new_activation_token
from portail.activation import services
from portail.audit.models import Event
from portail.typography import normalised
from tests.helpers import LOGIN, WRONG, login, text

pytestmark = pytest.mark.django_db
ACTIVATION = "/auth/activation"
NEW_PASSWORD = "girafe tambour citron vélo"


def activation_data(**overrides):
    data = {
        "new_password": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD,
        "email": "  Elodie.Dupre@Example.ORG ",
        "phone": "06 12 34 56 78",
        "charter": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def activating(client, pending_pupil):
    """A pupil who typed identifier and code at login: the client is on the activation page."""
    user, code = pending_pupil
    response = login(client, "elodie.dupre", code)
    assert response.status_code == 302 and response["Location"] == ACTIVATION
    return user, code


def test_code_at_login_opens_the_activation_page(client, activating):
    page = text(client.get(ACTIVATION))
    for expected in [
        "Première connexion",
        "Nouveau mot de passe",
        "Confirmation du nouveau mot de passe",
        "Adresse de messagerie",
        "Téléphone mobile",
        "(facultatif)",
        "J'accepte la charte d'utilisation de l'ENT",
        'href="/auth/charte"',
        'autocomplete="new-password"',
        'autocomplete="email"',
        "data-strength-for",
    ]:
        assert expected in page, expected
    assert SESSION_KEY not in client.session  # not logged in before activation


def test_code_is_accepted_with_capitals_and_spaces(client, pending_pupil):
    user, code = pending_pupil
    response = login(client, " Élodie.Dupré ", f" {code.upper()} ")
    assert response["Location"] == ACTIVATION


def test_charter_page_is_public(client):
    response = client.get("/auth/charte")
    assert response.status_code == 200
    assert "Charte d'utilisation de l'ENT" in text(response)


def test_activation_logs_in_goes_home_and_kills_the_code(client, activating):
    user, code = activating
    response = client.post(ACTIVATION, activation_data())
    assert response.status_code == 302 and response["Location"] == "/"
    assert int(client.session[SESSION_KEY]) == user.pk
    home = text(client.get("/"))
    assert "Élodie Dupré" in home and "Votre compte est activé" in home

    user.refresh_from_db()
    assert user.state == State.ACTIVE
    assert user.email == "elodie.dupre@example.org"
    assert user.phone == "+33612345678"
    assert user.activated_at and user.charter_accepted_at
    assert user.check_password(NEW_PASSWORD)
    assert not Token.objects.filter(user=user, used_at__isnull=True).exists()
    assert Event.objects.filter(tag="account.activated", target=user).exists()
    assert not any(k.startswith("activation_") for k, _v in client.session.items())

    client.post("/auth/logout")
    response = login(client, "elodie.dupre", code)
    # The code is dead; the page says why (issue 7): the account is active, use the new password.
    assert response.status_code == 200 and WRONG not in text(response)
    assert "Votre compte est déjà activé" in text(response)
    assert login(client, "elodie.dupre", NEW_PASSWORD)["Location"] == "/"


def test_audit_of_activation_holds_no_secret_or_contact(client, activating):
    user, code = activating
    client.post(ACTIVATION, activation_data())
    for event in Event.objects.filter(target=user):
        dumped = str(event.data) + event.subject
        for secret in (code, NEW_PASSWORD, "example.org", "612345678"):
            assert secret not in dumped


def test_activation_cycles_the_session_id(client, activating):
    before = client.session.session_key
    client.post(ACTIVATION, activation_data())
    assert client.session.session_key != before


@pytest.mark.parametrize("remember", [False, True])
def test_remember_me_from_login_carries_through_activation(
    client, pending_pupil, settings, remember
):
    user, code = pending_pupil
    login(client, "elodie.dupre", code, remember=remember)
    response = client.post(ACTIVATION, activation_data())
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    if remember:
        assert int(cookie["max-age"]) == settings.PORTAIL_REMEMBER_ME_DAYS * 86400
    else:
        assert not cookie["max-age"] and not cookie["expires"]


def test_next_url_from_login_is_followed_after_activation(client, pending_pupil):
    user, code = pending_pupil
    client.post(LOGIN + "?next=/compte/", {"identifier": user.identifier, "password": code})
    assert client.post(ACTIVATION, activation_data())["Location"] == "/compte/"


@pytest.mark.parametrize(
    "overrides,field,message",
    [
        (
            {"new_password2": "autre chose encore"},
            "new_password2",
            "Les deux mots de passe ne concordent pas.",
        ),
        (
            {"new_password": "elodie2010", "new_password2": "elodie2010"},
            "new_password",
            "Sécurité : Faible.",
        ),
        (
            {"new_password": "", "new_password2": ""},
            "new_password",
            "Choisissez votre nouveau mot de passe.",
        ),
        ({"email": "elodie.example.org"}, "email", "Cette adresse de messagerie n'est pas valide."),
        ({"email": ""}, "email", "Indiquez votre adresse de messagerie."),
        ({"phone": "01 23"}, "phone", "Ce numéro de téléphone mobile n'est pas valide."),
        ({"phone": "01 23 45 67 89"}, "phone", "Ce numéro de téléphone mobile n'est pas valide."),
        ({"charter": None}, "charter", "vous devez accepter sa charte d'utilisation"),
    ],
)
def test_each_field_error_is_shown_next_to_it_and_nothing_is_saved(
    client, activating, overrides, field, message
):
    user, code = activating
    response = client.post(ACTIVATION, activation_data(**overrides))
    assert response.status_code == 200
    page = text(response)
    # The message sits in the field's own error list, which its input points to (aria-describedby).
    error_block = page.split(f'id="id_{field}_error"', 1)[1].split("</ul>", 1)[0]
    assert message in normalised(error_block)
    assert re.search(rf'aria-describedby="[^"]*id_{field}_error[^"]*"[^>]*id="id_{field}"', page)
    user.refresh_from_db()
    assert user.state == State.PENDING and not user.email and not user.phone
    assert not user.has_usable_password()
    assert Token.objects.filter(user=user, used_at__isnull=True).count() == 1
    assert SESSION_KEY not in client.session
    # The typed email stays in the form; passwords are never sent back.
    assert NEW_PASSWORD not in page


def test_several_errors_at_once_each_beside_its_field(client, activating):
    response = client.post(
        ACTIVATION,
        activation_data(new_password2="différent du premier", email="pas une adresse", phone="12"),
    )
    page = normalised(text(response))
    assert "Les deux mots de passe ne concordent pas." in page
    assert "Cette adresse de messagerie n'est pas valide." in page
    assert "Ce numéro de téléphone mobile n'est pas valide." in page


def test_phone_is_optional(client, activating):
    user, _ = activating
    assert client.post(ACTIVATION, activation_data(phone=""))["Location"] == "/"
    user.refresh_from_db()
    assert user.state == State.ACTIVE and user.phone == ""


def test_foreign_mobile_is_stored_e164(client, activating):
    user, _ = activating
    client.post(ACTIVATION, activation_data(phone="+32 470 12 34 56"))
    user.refresh_from_db()
    assert user.phone == "+32470123456"


def test_without_an_activation_session_the_page_sends_to_login(client, pending_pupil):
    response = client.get(ACTIVATION)
    assert response.status_code == 302 and response["Location"] == LOGIN
    response = client.post(ACTIVATION, activation_data())
    assert response["Location"] == LOGIN
    user, _ = pending_pupil
    user.refresh_from_db()
    assert user.state == State.PENDING


def test_activation_session_expires(client, activating, monkeypatch):
    user, _ = activating
    session = client.session
    session["activation_started"] = int(time.time()) - services.ACTIVATION_SESSION_SECONDS - 1
    session.save()
    response = client.post(ACTIVATION, activation_data())
    assert response["Location"] == LOGIN
    assert "Saisissez de nouveau votre identifiant et votre code" in text(client.get(LOGIN))
    user.refresh_from_db()
    assert user.state == State.PENDING


def test_code_replaced_meanwhile_refuses_activation(client, activating):
    """A référent issued a new code while the page was open: the old code's session is dead."""
    user, _ = activating
    from portail.accounts.provisioning import issue_activation_code

    issue_activation_code(user)
    response = client.post(ACTIVATION, activation_data())
    assert response["Location"] == LOGIN
    user.refresh_from_db()
    assert user.state == State.PENDING


def test_code_used_in_another_browser_cannot_activate_twice(client, pending_pupil):
    from django.test import Client

    user, code = pending_pupil
    other = Client()
    login(client, user.identifier, code)
    login(other, user.identifier, code)
    assert client.post(ACTIVATION, activation_data())["Location"] == "/"
    response = other.post(
        ACTIVATION,
        activation_data(
            new_password="autre mot de passe solide 42",
            new_password2="autre mot de passe solide 42",
        ),
    )
    assert response["Location"] == LOGIN
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_expired_code_opens_nothing(client, pending_pupil):
    user, code = pending_pupil
    Token.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = login(client, user.identifier, code)
    assert response.status_code == 200 and WRONG in text(response)


def test_code_expires_after_the_configured_days(pending_pupil, settings):
    settings.PORTAIL_ACTIVATION_CODE_DAYS = 7
    user, _ = pending_pupil
    token, _code = new_activation_token(user)
    assert token.expires_at - token.created_at == timedelta(days=7)


def test_before_activation_only_the_code_opens_the_account(client, pending_pupil):
    user, code = pending_pupil
    user.set_password(NEW_PASSWORD)  # even a password set by mistake does not open it
    user.save()
    response = login(client, user.identifier, NEW_PASSWORD)
    assert response.status_code == 200 and WRONG in text(response)
    assert login(client, user.identifier, code)["Location"] == ACTIVATION


def test_other_activation_codes_die_with_activation(client, pending_pupil):
    user, code = pending_pupil
    spare, spare_code = new_activation_token(user)
    spare.save()
    login(client, user.identifier, code)
    client.post(ACTIVATION, activation_data())
    client.post("/auth/logout")
    assert WRONG in text(login(client, user.identifier, spare_code))
    assert Token.objects.filter(user=user, purpose=Token.Purpose.ACTIVATION).count() == 1


def test_activation_rate_limit_answers_429(client, activating, settings):
    settings.PORTAIL_RATE_LIMITS = {
        **settings.PORTAIL_RATE_LIMITS,
        "activation:identifier": (2, 86400),
    }
    user, _ = activating
    for _ in range(2):
        client.post(ACTIVATION, activation_data(new_password2="pas le même mot de passe"))
    response = client.post(ACTIVATION, activation_data())
    assert response.status_code == 429
    assert "Trop de tentatives" in text(response)
    assert User.objects.get(pk=user.pk).state == State.PENDING


def test_meter_on_the_activation_page_judges_against_the_pupils_own_names(client, activating):
    response = client.post("/auth/password-strength", {"password": "elodie.dupre.2010"})
    data = response.json()
    assert data["level"] == "Faible"
    assert any("prénom" in e for e in data["errors"])
    assert client.post("/auth/password-strength", {"password": NEW_PASSWORD}).json()["level"] in {
        "Modérée",
        "Forte",
    }


def test_password_built_on_own_name_is_refused_at_activation(client, activating):
    user, _ = activating
    response = client.post(
        ACTIVATION,
        activation_data(new_password="elodie.dupre.2010", new_password2="elodie.dupre.2010"),
    )
    assert "Sécurité : Faible." in text(response)
    user.refresh_from_db()
    assert user.state == State.PENDING
