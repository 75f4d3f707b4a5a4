import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from portail.audit.models import Event
from portail.typography import normalised
from tests.helpers import STRONG_PASSWORD, login, text

pytestmark = pytest.mark.django_db
ACCOUNT = "/compte/"
NEW_PASSWORD = "girafe tambour citron vélo"


@pytest.fixture
def logged_in(client, active_user, school_class):
    active_user.classes.set([school_class])
    active_user.phone = "+33612345678"
    active_user.save()
    response = login(client, "jean.dupont", STRONG_PASSWORD)
    assert response.status_code == 302
    return active_user


def change_password(client, current=STRONG_PASSWORD, new=NEW_PASSWORD, confirm=None):
    return client.post(
        "/compte/mot-de-passe",
        {
            "password-current_password": current,
            "password-new_password": new,
            "password-new_password2": new if confirm is None else confirm,
        },
    )


def change_contact(client, email="jean.dupont@example.org", phone="", current=STRONG_PASSWORD):
    return client.post(
        "/compte/coordonnees",
        {"contact-email": email, "contact-phone": phone, "contact-current_password": current},
    )


def test_account_page_needs_login(client):
    response = client.get(ACCOUNT)
    assert response.status_code == 302 and response["Location"].startswith("/auth/login")


def test_account_page_shows_identifier_profile_school_class_contact(client, logged_in):
    page = text(client.get(ACCOUNT))
    for expected in [
        "Mon compte",
        "jean.dupont",
        "Parent",
        "Lycée Claude Monet",
        "2nde 3",
        "jean.dupont@example.org",
        "06 12 34 56 78",
        "Mot de passe actuel",
        "Nouveau mot de passe",
        "Confirmation du nouveau mot de passe",
        "Adresse de messagerie",
        "Téléphone mobile",
        "data-strength-for",
    ]:
        assert expected in page, expected


def test_password_change_keeps_this_session_and_ends_the_others(client, logged_in):
    other = Client()
    login(other, "jean.dupont", STRONG_PASSWORD)
    assert other.get("/").status_code == 200
    before = client.session.session_key

    response = change_password(client)
    assert response.status_code == 302 and response["Location"] == ACCOUNT
    page = text(client.get(ACCOUNT))
    assert "Votre mot de passe a été modifié." in page
    assert 'role="status"' in page
    assert client.session.session_key != before  # a fresh id for the new credentials
    assert client.get("/").status_code == 200
    assert other.get("/").status_code == 302  # the other browser is logged out

    logged_in.refresh_from_db()
    assert logged_in.check_password(NEW_PASSWORD)
    assert Event.objects.filter(tag="account.password.changed", target=logged_in).exists()


def test_wrong_current_password_is_refused_and_nothing_changes(client, logged_in):
    response = change_password(client, current="pas le bon mot de passe")
    assert response.status_code == 200
    page = text(response)
    error = page.split('id="id_password-current_password_error"', 1)[1]
    assert "Le mot de passe actuel est incorrect." in error.split("</ul>", 1)[0]
    logged_in.refresh_from_db()
    assert logged_in.check_password(STRONG_PASSWORD)
    assert not Event.objects.filter(tag="account.password.changed").exists()


def test_new_passwords_must_match_and_be_strong(client, logged_in):
    page = text(change_password(client, confirm="autre chose tout à fait"))
    assert "Les deux mots de passe ne concordent pas." in page
    page = text(change_password(client, new="jeandupont1"))
    assert "Sécurité : Faible." in page
    logged_in.refresh_from_db()
    assert logged_in.check_password(STRONG_PASSWORD)


def test_wrong_current_passwords_are_rate_limited(client, logged_in, settings):
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "account:user": (2, 86400)}
    for _ in range(2):
        change_password(client, current="pas le bon mot de passe")
    response = change_password(client)
    assert response.status_code == 429
    logged_in.refresh_from_db()
    assert logged_in.check_password(STRONG_PASSWORD)


def test_email_and_phone_change_with_password_audited_without_values(client, logged_in):
    response = change_contact(client, email=" Jean.Nouveau@Example.NET ", phone="07 81 23 45 67")
    assert response["Location"] == ACCOUNT
    page = text(client.get(ACCOUNT))
    assert (
        "Votre adresse de messagerie et votre numéro de téléphone mobile ont été modifiés." in page
    )
    logged_in.refresh_from_db()
    assert logged_in.email == "jean.nouveau@example.net"
    assert logged_in.phone == "+33781234567"
    tags = set(Event.objects.filter(target=logged_in).values_list("tag", flat=True))
    assert {"account.email.changed", "account.phone.changed"} <= tags
    for event in Event.objects.filter(target=logged_in):
        dumped = str(event.data)
        for value in ("example", "781234567", "612345678", STRONG_PASSWORD):
            assert value not in dumped


def test_phone_can_be_removed(client, logged_in):
    change_contact(client, phone="")
    logged_in.refresh_from_db()
    assert logged_in.phone == ""
    assert "Votre numéro de téléphone mobile a été modifié." in text(client.get(ACCOUNT))


def test_contact_change_needs_the_current_password(client, logged_in):
    response = change_contact(client, email="autre@example.net", current="mauvais mot de passe")
    assert "Le mot de passe actuel est incorrect." in text(response)
    logged_in.refresh_from_db()
    assert logged_in.email == "jean.dupont@example.org"
    assert not Event.objects.filter(tag="account.email.changed").exists()


@pytest.mark.parametrize(
    "email,phone,message",
    [
        ("pas-une-adresse", "", "Cette adresse de messagerie n'est pas valide."),
        ("", "", "Indiquez votre adresse de messagerie."),
        ("jean@example.org", "0123", "Ce numéro de téléphone mobile n'est pas valide."),
    ],
)
def test_invalid_contact_is_refused_in_french(client, logged_in, email, phone, message):
    response = change_contact(client, email=email, phone=phone)
    assert message in normalised(text(response))
    logged_in.refresh_from_db()
    assert logged_in.email == "jean.dupont@example.org" and logged_in.phone == "+33612345678"


def test_unchanged_contact_says_so(client, logged_in):
    change_contact(client, phone="06 12 34 56 78")
    assert "Aucune modification" in text(client.get(ACCOUNT))
    assert not Event.objects.filter(
        tag__in=["account.email.changed", "account.phone.changed"]
    ).exists()


def test_session_survives_password_change_with_remember_me(client, active_user, settings):
    login(client, "jean.dupont", STRONG_PASSWORD, remember=True)
    response = change_password(client)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == settings.PORTAIL_REMEMBER_ME_DAYS * 86400
    assert SESSION_KEY in client.session


def test_email_change_notifies_the_old_address_only(client, logged_in):
    from portail.mail.models import OutgoingMail

    change_contact(client, email="jean.nouveau@example.net")
    mail = OutgoingMail.objects.get()
    assert mail.to == "jean.dupont@example.org"
    assert mail.subject == "Votre adresse de messagerie ENT a été modifiée"
    assert "jean.nouveau" not in mail.text + mail.html
    assert "référent ENT" in mail.text


def test_password_change_sends_a_notice_without_the_password(client, logged_in):
    from portail.mail.models import OutgoingMail

    change_password(client)
    mail = OutgoingMail.objects.get()
    assert mail.to == "jean.dupont@example.org"
    assert "mot de passe" in mail.subject
    assert NEW_PASSWORD not in mail.text + mail.html
    assert "https://ent.example.test/auth/login" in mail.text


def test_phone_only_change_sends_no_mail(client, logged_in):
    from portail.mail.models import OutgoingMail

    change_contact(client, phone="07 81 23 45 67")
    assert not OutgoingMail.objects.exists()
