"""Issue 12 as a référent and a parent would do it, in Chromium, with axe-core on every page:
the référent sends a class's credentials by email in three clicks; a parent opens the mail
(received by a real SMTP server) on a phone, follows « Activer mon compte » and completes the
first connection without any paper."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from portail.accounts.models import Profile, State
from portail.accounts.provisioning import create_account
from portail.activation.credentials import send_credentials
from portail.directory.models import Function
from portail.mail.models import OutgoingMail
from portail.mail.services import deliver_due
from portail.typography import either
from tests.console.conftest import enrol, staff, totp_now
from tests.e2e.helpers import NEW_PASSWORD, log_in, meter
from tests.helpers import STRONG_PASSWORD
from tests.smtp import SMTPServer, point_django_at

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _pending(first, last, email, school, school_class, profile=Profile.PARENT):
    user, _code = create_account(first, last, profile, structures=[school], classes=[school_class])
    user.contact_email = email
    user.save(update_fields=["contact_email"])
    return user


def _referent_logs_in(page, a11y, school):
    referent = staff("anne.martin", school)
    Function.objects.create(user=referent, role=Function.Role.REFERENT, structure=school)
    enrol(referent)
    page.goto("/console/")
    a11y(page)
    log_in(page, "anne.martin", STRONG_PASSWORD)
    page.get_by_label("Code de vérification").fill(totp_now())
    a11y(page)
    page.get_by_role("button", name="Vérifier").click()
    expect(page.get_by_role("link", name="Fiches de connexion")).to_be_visible()
    a11y(page)


def test_referent_sends_a_class_and_a_parent_activates_from_the_mail(
    browser, page, a11y, live_server, settings, smtp, school, school_class
):
    settings.PORTAIL_BASE_URL = live_server.url  # the mail's link points at this server
    parent = _pending("Marc", "Dupont", "marc.dupont@example.org", school, school_class)
    _pending("Léa", "Martin", "", school, school_class, Profile.ELEVE)

    _referent_logs_in(page, a11y, school)
    page.get_by_role("link", name="Fiches de connexion").click()
    a11y(page)
    page.get_by_label("Classe").select_option(label=str(school_class))
    page.get_by_role("button", name="Envoyer les identifiants par courriel").click()  # 1
    expect(page.get_by_text("1 compte recevra un courriel")).to_be_visible()
    expect(page.get_by_text("1 n’a pas d’adresse\u00a0: imprimez leur fiche")).to_be_visible()
    expect(
        page.get_by_label("Renvoyer aussi aux comptes déjà destinataires il y a moins de 24 h")
    ).not_to_be_checked()
    a11y(page)
    page.get_by_role("button", name="Envoyer les courriels").click()  # 2
    expect(page.get_by_text("1 courriel mis en file d’envoi.")).to_be_visible()  # 3: the report
    a11y(page)

    # The parent, on a phone: the mail, then the link.
    mail = smtp.only(to="marc.dupont@example.org")
    assert parent.identifier in mail.text
    link = mail.links(prefix=live_server.url + "/auth/activation/lien/")[0]
    phone = browser.new_context(
        base_url=live_server.url,
        locale="fr-FR",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    tab = phone.new_page()
    tab.on("framenavigated", a11y.on_navigation)
    tab.goto(link)
    expect(tab).to_have_url(re.compile(r"/auth/activation$"))  # the token left the address bar
    expect(tab.get_by_role("heading", level=1, name="Première connexion")).to_be_visible()
    expect(tab.get_by_label("Adresse de messagerie")).to_have_value("marc.dupont@example.org")
    a11y(tab)
    tab.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    expect(meter(tab)).to_have_text("Sécurité : Forte")
    tab.get_by_label("Confirmation du nouveau mot de passe").fill(NEW_PASSWORD)
    tab.get_by_label("Adresse de messagerie").fill("marc.perso@example.org")  # may change it
    tab.get_by_label(either("J'accepte la charte d'utilisation de l'ENT")).check()
    tab.get_by_role("button", name="Activer mon compte").click()
    expect(tab.get_by_text("Votre compte est activé.")).to_be_visible()
    a11y(tab)
    parent.refresh_from_db()
    assert parent.state == State.ACTIVE and parent.email == "marc.perso@example.org"

    # The link served once.
    tab.get_by_role("button", name="Se déconnecter").click()
    a11y(tab)
    tab.goto(urlsplit(link).path)
    expect(tab.get_by_role("status")).to_contain_text("Votre compte est déjà activé")
    a11y(tab)
    phone.close()


def test_refused_address_is_shown_on_the_account_page(page, a11y, settings, school, school_class):
    parent = _pending("Marc", "Dupont", "inconnu@example.org", school, school_class)
    relay = SMTPServer("refuse")  # 550 to DATA: the address is refused for good
    relay.start()
    point_django_at(settings, relay)
    try:
        send_credentials(None, [parent])
        deliver_due()
    finally:
        relay.stop()
    assert OutgoingMail.objects.get().status == OutgoingMail.Status.FAILED

    _referent_logs_in(page, a11y, school)
    page.goto(f"/console/comptes/{parent.pk}/")
    expect(page.get_by_text("adresse refusée par le serveur de messagerie")).to_be_visible()
    a11y(page)
    # Sent less than 24 h ago: a new sending (to a corrected address) needs the explicit choice.
    page.get_by_role("link", name="Envoyer les identifiants par courriel").click()
    expect(page.get_by_text("0 compte recevra un courriel")).to_be_visible()
    expect(
        page.get_by_text("1 compte a déjà reçu ses identifiants il y a moins de 24 h")
    ).to_be_visible()
    a11y(page)
    page.get_by_label("Renvoyer aussi aux comptes déjà destinataires il y a moins de 24 h").check()
    page.get_by_role("button", name="Envoyer les courriels").click()
    expect(page.get_by_text("1 courriel mis en file d’envoi.")).to_be_visible()
    a11y(page)
    assert OutgoingMail.objects.filter(status=OutgoingMail.Status.PENDING).count() == 1
