"""First connection with the code of the letter, and the account page, clicked through in Chromium."""

import re

import pytest
from playwright.sync_api import expect

from portail.accounts.models import State
from portail.typography import either
from tests.e2e.helpers import NEW_PASSWORD, log_in, meter
from tests.helpers import STRONG_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_first_connection_with_the_code_of_the_letter(page, a11y, context, pending_pupil):
    user, code = pending_pupil
    page.goto("/auth/login")
    a11y(page)
    log_in(page, user.identifier, code)

    expect(page.get_by_role("heading", level=1, name="Première connexion")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/auth/activation$"))
    # An eye button beside each of the two password fields.
    expect(page.get_by_role("button", name="Afficher le mot de passe")).to_have_count(2)
    a11y(page)

    # Errors are shown next to each field, and nothing is saved.
    page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirmation du nouveau mot de passe").fill(NEW_PASSWORD + " bis")
    page.get_by_label("Adresse de messagerie").fill("elodie.dupre@")
    page.get_by_label("Téléphone mobile").fill("06 12")
    page.get_by_role("button", name="Activer mon compte").click()
    # The error summary has focus and links to the field; the field names its message.
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(
        summary.get_by_role("link", name="Les deux mots de passe ne concordent pas.")
    ).to_be_visible()
    expect(page).to_have_title(re.compile(r"^Erreur\s:\sPremière connexion"))
    expect(
        page.get_by_label("Confirmation du nouveau mot de passe")
    ).to_have_accessible_description(re.compile("Les deux mots de passe ne concordent pas."))
    a11y(page)
    user.refresh_from_db()
    assert user.state == State.PENDING

    page.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    expect(meter(page)).to_have_text("Sécurité : Forte")
    page.get_by_label("Confirmation du nouveau mot de passe").fill(NEW_PASSWORD)
    page.get_by_label("Adresse de messagerie").fill("elodie.dupre@example.org")
    page.get_by_label("Téléphone mobile").fill("06 12 34 56 78")
    # The charter opens in a new tab, for reading before accepting it.
    with context.expect_page() as new_tab:
        page.get_by_role("link", name=either("Lire la charte d'utilisation de l'ENT")).click()
    charter = new_tab.value
    expect(
        charter.get_by_role("heading", level=1, name=either("Charte d'utilisation de l'ENT"))
    ).to_be_visible()
    a11y(charter)
    charter.close()
    page.get_by_label(either("J'accepte la charte d'utilisation de l'ENT")).check()
    a11y(page)
    page.get_by_role("button", name="Activer mon compte").click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Élodie Dupré")
    expect(page.get_by_text("Votre compte est activé.")).to_be_visible()
    a11y(page)
    user.refresh_from_db()
    assert user.state == State.ACTIVE and user.email == "elodie.dupre@example.org"
    assert user.phone == "+33612345678"

    # After activation the code opens nothing, and says why; the new password does.
    page.get_by_role("button", name="Se déconnecter").click()
    log_in(page, user.identifier, code)
    expect(page.get_by_role("alert")).to_contain_text(
        "Votre compte est déjà activé, connectez-vous avec votre nouveau mot de passe."
    )
    log_in(page, user.identifier, NEW_PASSWORD)
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()


def test_account_page_changes_the_password(page, a11y, active_user):
    page.goto("/compte/")
    a11y(page)  # the login page, with ?next=
    log_in(page, "jean.dupont", STRONG_PASSWORD)
    expect(page.get_by_role("heading", level=1, name="Mon compte")).to_be_visible()
    expect(page.get_by_text("jean.dupont", exact=True)).to_be_visible()
    a11y(page)
    expect(page.get_by_role("button", name="Afficher le mot de passe")).to_have_count(4)
    section = page.get_by_role("region", name="Changer mon mot de passe")
    section.get_by_label("Mot de passe actuel").fill(STRONG_PASSWORD)
    section.get_by_label("Nouveau mot de passe", exact=True).fill(NEW_PASSWORD)
    expect(meter(section)).to_have_text("Sécurité : Forte")
    section.get_by_label("Confirmation du nouveau mot de passe").fill(NEW_PASSWORD)
    section.get_by_role("button", name="Enregistrer le mot de passe").click()
    expect(page.get_by_text("Votre mot de passe a été modifié.")).to_be_visible()
    a11y(page)
    page.get_by_role("button", name="Se déconnecter").click()
    log_in(page, "jean.dupont", NEW_PASSWORD)
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    a11y(page)
