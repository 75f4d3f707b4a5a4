"""« Nouvelle connexion à votre compte ENT »: a mail when an account logs in from a new device,
received by a real SMTP server (aiosmtpd) through the mail queue."""

import pytest
from django.test import Client

from portail.audit.models import Event
from portail.security.addresses import parse_school_networks
from tests.helpers import STRONG_PASSWORD, account, login

pytestmark = pytest.mark.django_db(transaction=True)

SUBJECT = "Nouvelle connexion à votre compte ENT"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
ADDRESS = "jean.dupont@example.org"


def new_device(user_agent=WINDOWS):
    return Client(HTTP_USER_AGENT=user_agent)


def notices(smtp, to=ADDRESS):
    return [m for m in smtp.sent_to(to) if m.subject == SUBJECT]


@pytest.fixture
def known(active_user):
    """The account's first login ever, on its phone: no mail (nothing to compare with)."""
    phone = new_device(ANDROID)
    assert login(phone, "jean.dupont", STRONG_PASSWORD).status_code == 302
    return phone


def test_first_login_ever_sends_nothing(smtp, known):
    assert notices(smtp) == []


def test_the_same_browser_again_sends_nothing(smtp, known):
    known.post("/auth/logout")
    login(known, "jean.dupont", STRONG_PASSWORD)
    assert notices(smtp) == []


def test_a_new_device_gets_a_mail_a_parent_understands(smtp, settings, known):
    settings.PORTAIL_SCHOOL_NETWORKS = parse_school_networks("203.0.113.0/28=Lycée Claude Monet")
    login(new_device(WINDOWS), "jean.dupont", STRONG_PASSWORD, REMOTE_ADDR="203.0.113.9")
    (mail,) = notices(smtp)
    body = mail.text
    assert body.startswith("Bonjour Jean,")
    assert "(jean.dupont)" in body
    assert "Appareil\u00a0: Firefox sur Windows" in body
    assert "Lieu\u00a0: Lycée Claude Monet" in body
    assert "Date\u00a0: le " in body and " à " in body
    assert "Si ce n’est pas vous" in body and "«\u00a0Besoin d’aide\u00a0?\u00a0»" in body
    assert "https://ent.example.test/auth/help" in mail.links()
    assert "https://ent.example.test/compte/" in mail.links()
    assert "203.0.113.9" not in body  # no address in a mail
    assert "Firefox sur Windows" in mail.html
    event = Event.objects.get(tag="account.new_device.notified")
    assert event.data["device"] == "Firefox sur Windows"


def test_an_account_without_address_gets_nothing(smtp, school):
    account("sans.adresse", "Sam", "Sans", structures=[school], password=STRONG_PASSWORD)
    login(new_device(ANDROID), "sans.adresse", STRONG_PASSWORD)
    login(new_device(WINDOWS), "sans.adresse", STRONG_PASSWORD)
    assert [m for m in smtp.messages if m.subject == SUBJECT] == []
    assert not Event.objects.filter(tag="account.new_device.notified").exists()


def test_a_failed_login_from_a_new_device_sends_nothing(smtp, known):
    login(new_device(WINDOWS), "jean.dupont", "pas le bon mot de passe")
    assert notices(smtp) == []


def test_no_more_than_the_daily_limit_so_nobody_can_flood_the_mailbox(smtp, settings, known):
    settings.PORTAIL_NEW_DEVICE_MAILS_PER_DAY = 3
    for _ in range(5):
        assert login(new_device(WINDOWS), "jean.dupont", STRONG_PASSWORD).status_code == 302
    assert len(notices(smtp)) == 3
    assert Event.objects.filter(tag="account.new_device.not_notified").count() == 2


def test_activation_sends_no_new_device_mail(smtp, pending_pupil):
    user, code = pending_pupil
    browser = new_device(ANDROID)
    assert login(browser, "elodie.dupre", code)["Location"] == "/auth/activation"
    password = "girafe tambour citron vélo"
    response = browser.post(
        "/auth/activation",
        {
            "new_password": password,
            "new_password2": password,
            "email": "elodie@example.org",
            "charter": "on",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert notices(smtp, "elodie@example.org") == []
    # The next login from another device is news to her.
    login(new_device(WINDOWS), "elodie.dupre", password)
    assert len(notices(smtp, "elodie@example.org")) == 1
