"""The `make run` newcomer's path: no SMTP server, mail read in the dev mailbox in the browser."""

import re

import pytest
from playwright.sync_api import expect

from portail.typography import either
from tests.e2e.helpers import NEW_PASSWORD, log_in, reset_password

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mailbox_urls(settings):
    # Without EMAIL_URL the portal uses the mailbox backend (pytest-django puts locmem instead).
    settings.EMAIL_BACKEND = "portail.mail.backends.MailboxBackend"
    return settings


@pytest.fixture
def dev_mode(mailbox_urls, live_server):
    # What `make run` sets: PORTAIL_DEBUG=1 and no EMAIL_URL.
    mailbox_urls.DEBUG = True
    mailbox_urls.PORTAIL_BASE_URL = live_server.url
    return mailbox_urls


def test_lost_password_completed_through_the_dev_mailbox(page, a11y, active_user, dev_mode):
    page.goto("/auth/lost-password")
    a11y(page)
    page.get_by_label("Identifiant").fill("jean.dupont")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("status")).to_contain_text("courriers indésirables")
    a11y(page)

    page.get_by_role("link", name="Boîte aux lettres de développement").click()
    expect(
        page.get_by_role("heading", level=1, name="Boîte aux lettres de développement")
    ).to_be_visible()
    a11y(page)
    page.get_by_role("link", name="ENT : réinitialisation de votre mot de passe").click()
    expect(page.get_by_text(either("À : jean.dupont@example.org"))).to_be_visible()
    a11y(page)
    page.get_by_role("link", name=re.compile(r"auth.reset.")).click()

    expect(
        page.get_by_role("heading", level=1, name="Réinitialisation du mot de passe")
    ).to_be_visible()
    a11y(page)
    reset_password(page, "jean.dupont", NEW_PASSWORD)
    a11y(page)
    log_in(page, "jean.dupont", NEW_PASSWORD)
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    a11y(page)


def test_dev_mailbox_is_not_served_in_production(page, a11y, mailbox_urls):
    assert mailbox_urls.DEBUG is False
    response = page.goto("/dev/mailbox/")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1, name="Page introuvable")).to_be_visible()
    a11y(page)
