"""« Courriels en échec » in Chromium, as a regional administrator clicks it, with axe-core."""

import os

import pytest
from playwright.sync_api import expect

from portail.directory.models import Function
from portail.mail.models import OutgoingMail
from portail.mail.services import deliver_due, send_template
from tests.conftest import STRONG_PASSWORD
from tests.console.conftest import enrol, staff, totp_now
from tests.smtp import SMTPServer, point_django_at

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the ORM and Playwright share this thread


def test_regional_admin_requeues_a_failed_mail(browser, axe, live_server, settings):
    admin = staff("regis.region", None, first_name="Régis", last_name="Région")
    Function.objects.create(user=admin, role=Function.Role.REGIONAL_ADMIN)
    enrol(admin)
    relay = SMTPServer("refuse")  # 550: the mail fails for good
    relay.start()
    point_django_at(settings, relay)
    try:
        send_template(
            "password_reset",
            "jean.dupont@example.org",
            {"first_name": "Jean", "identifier": "jean.dupont", "link": "x", "minutes": 60},
        )
        deliver_due()
    finally:
        relay.stop()
    assert OutgoingMail.objects.get().status == OutgoingMail.Status.FAILED

    context = browser.new_context(base_url=live_server.url, locale="fr-FR")
    page = context.new_page()
    page.goto("/console/")
    page.get_by_label("Identifiant").fill("regis.region")
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    page.get_by_label("Code de vérification").fill(totp_now())
    page.get_by_role("button", name="Vérifier").click()

    page.get_by_role("link", name="Courriels en échec").click()
    expect(page.get_by_role("heading", name="Courriels en échec")).to_be_visible()
    expect(page.get_by_role("cell", name="j•••@e•••.org")).to_be_visible()
    assert axe.run(page).violations_count == 0
    page.get_by_role("link", name="Renvoyer le courriel").click()
    expect(page.get_by_role("heading", name="Renvoyer ce courriel ?")).to_be_visible()
    assert axe.run(page).violations_count == 0
    page.get_by_role("button", name="Renvoyer").click()
    expect(page.get_by_text("Le courriel est remis dans la file d’envoi.")).to_be_visible()
    expect(page.get_by_role("cell", name="Aucun courriel en échec.")).to_be_visible()
    context.close()
    assert OutgoingMail.objects.get().status == OutgoingMail.Status.PENDING
