"""What several browser tests do alike: log in, read the strength meter, send the reset form."""

import re

from playwright.sync_api import expect

# Judged "Sécurité : Forte" by the policy.
NEW_PASSWORD = "lanterne violette sous la pluie"


def log_in(page, identifier, password, remember=False):
    page.get_by_label("Identifiant").fill(identifier)
    page.get_by_label("Mot de passe", exact=True).fill(password)
    if remember:
        page.get_by_label("Se souvenir de moi").check()
    page.get_by_role("button", name="Connexion").click()


def meter(page):
    return page.get_by_role("status").filter(has_text="Sécurité")


def reset_password(page, identifier, password):
    """On the reset page: the identifier, a strong new password twice, sent; back at the login."""
    page.get_by_label("Identifiant").fill(identifier)
    page.get_by_label("Nouveau mot de passe", exact=True).fill(password)
    expect(meter(page)).to_have_text("Sécurité : Forte")
    page.get_by_label("Confirmation du nouveau mot de passe").fill(password)
    page.get_by_role("button", name="Enregistrer").click()
    expect(page).to_have_url(re.compile(r"/auth/login$"))
