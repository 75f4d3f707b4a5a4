"""The seed's recovery flows clicked through in Chromium: lost password, lost identifier.

Mail goes to a real SMTP server (aiosmtpd, tests/smtp.py); the test opens the received message in
the browser, as a webmail would show it, and follows its link.
"""

import re

import pytest
from playwright.sync_api import expect

from portail.typography import either
from tests.e2e.helpers import NEW_PASSWORD, log_in, meter
from tests.helpers import STRONG_PASSWORD, account

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def mail_links_to_live_server(settings, live_server):
    # Links in emails are built from PORTAIL_BASE_URL: point it at the server the browser uses.
    settings.PORTAIL_BASE_URL = live_server.url
    return live_server.url


def open_mail(context, mail):
    """The received message's HTML part, shown in a new tab as a webmail would."""
    tab = context.new_page()
    tab.set_content(mail.html)
    return tab


def test_lost_password_by_mail_to_a_new_password(
    page, a11y, context, active_user, smtp, mail_links_to_live_server
):
    page.goto("/auth/login")
    a11y(page)
    page.get_by_role("link", name="Besoin d'aide ?").click()
    a11y(page)
    page.get_by_role("link", name="Vous avez perdu votre mot de passe ?").click()
    expect(
        page.get_by_text(
            "Entrez votre identifiant de connexion pour recevoir les instructions pour changer votre mot de passe."
        )
    ).to_be_visible()
    a11y(page)

    # A typo first: the seed's message.
    page.get_by_label("Identifiant").fill("jean.dupond")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Utilisateur inconnu, veuillez vérifier la saisie de votre identifiant."
    )
    a11y(page)
    assert smtp.messages == []

    page.get_by_label("Identifiant").fill(" Jean.Dupont ")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("status")).to_contain_text(
        "vérifiez votre dossier de courriers indésirables"
    )
    a11y(page)

    mail = smtp.only(to="jean.dupont@example.org")
    assert STRONG_PASSWORD not in mail.text
    inbox = open_mail(context, mail)
    inbox.get_by_role("link", name="Choisir mon nouveau mot de passe").click()

    expect(
        inbox.get_by_role("heading", level=1, name="Réinitialisation du mot de passe")
    ).to_be_visible()
    # The token has left the address bar before the form is shown.
    expect(inbox).to_have_url(re.compile(r"/auth/reset/$"))
    expect(inbox.get_by_role("button", name="Afficher le mot de passe")).to_have_count(2)
    a11y(inbox)
    inbox.get_by_label("Identifiant").fill("jean.dupont")
    new_password = inbox.get_by_label("Nouveau mot de passe", exact=True)
    new_password.fill("motdepasse")
    expect(meter(inbox)).to_contain_text("Sécurité : Faible")
    new_password.fill(NEW_PASSWORD)
    expect(meter(inbox)).to_have_text("Sécurité : Forte")
    a11y(inbox)  # the meter, shown, is accessible too
    inbox.get_by_label("Confirmation du nouveau mot de passe").fill(NEW_PASSWORD)
    inbox.get_by_role("button", name="Enregistrer").click()

    expect(inbox).to_have_url(re.compile(r"/auth/login$"))
    expect(inbox.get_by_text("Vous pouvez dès maintenant vous connecter")).to_be_visible()
    a11y(inbox)
    confirmation = smtp.sent_to("jean.dupont@example.org")[-1]
    assert confirmation.subject == "ENT : votre mot de passe a été modifié"
    assert NEW_PASSWORD not in confirmation.text

    log_in(inbox, "jean.dupont", NEW_PASSWORD)
    expect(inbox.get_by_role("button", name="Se déconnecter")).to_be_visible()
    a11y(inbox)

    # The link is dead now: this browser, which used it, is told the change is done; any
    # other browser is offered a new link.
    link = mail.links(prefix=mail_links_to_live_server)[0]
    inbox.goto(link)
    expect(inbox.get_by_role("status")).to_contain_text("Votre mot de passe a déjà été modifié")
    a11y(inbox)
    elsewhere = context.browser.new_context(base_url=mail_links_to_live_server).new_page()
    elsewhere.goto(link)
    expect(elsewhere.get_by_role("link", name="Demander un nouveau lien")).to_be_visible()
    a11y(elsewhere)
    elsewhere.context.close()


def test_lost_identifier_by_mail(page, a11y, active_user, smtp, mail_links_to_live_server):
    page.goto("/auth/help")
    a11y(page)
    page.get_by_role("link", name="Vous avez perdu votre identifiant ?").click()
    a11y(page)

    page.get_by_label("Adresse de messagerie").fill("inconnu@example.org")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Adresse courriel inconnue. Veuillez contacter votre administrateur ENT."
    )
    a11y(page)

    page.get_by_label("Adresse de messagerie").fill("Jean.Dupont@example.org")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("status")).to_contain_text("Un courriel contenant votre identifiant")
    a11y(page)
    mail = smtp.only(to="jean.dupont@example.org")
    assert "jean.dupont" in mail.text

    page.get_by_role("link", name="Retour à l'écran d'accueil").click()
    a11y(page)
    log_in(page, "jean.dupont", STRONG_PASSWORD)
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    a11y(page)


def test_shared_address_asks_the_first_name_and_sends_only_that_identifier(
    page, a11y, active_user, school, smtp
):
    # A parent's address, given by a sibling's account too.
    account(
        "lea.dupont", "Léa", "Dupont", "jean.dupont@example.org", [school], password=STRONG_PASSWORD
    )
    page.goto("/auth/lost-identifier")
    a11y(page)
    page.get_by_label("Adresse de messagerie").fill("jean.dupont@example.org")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_text("Plusieurs comptes utilisent cette adresse")).to_be_visible()
    a11y(page)
    page.get_by_label("Prénom").fill("lea")
    page.get_by_role("button", name="Envoyer").click()
    # The same answer whatever first name is typed: the mail says which accounts bear it.
    expect(page.get_by_role("status")).to_contain_text(
        either("il contient l'identifiant de chaque compte qui porte ce prénom")
    )
    a11y(page)
    mail = smtp.only(to="jean.dupont@example.org")
    assert "(Lycée Claude Monet)" in mail.text
    # Only the identifier asked for: the other account's stays private.
    assert re.search(r"\blea\.dupont\b", mail.text)
    assert not re.search(r"\bjean\.dupont\b", mail.text) and "jean.dupont" not in mail.html
