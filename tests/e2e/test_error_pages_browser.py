"""The error pages a user can meet, in the browser: French, accessible, with the way back."""

import re

import pytest
from playwright.sync_api import expect

from portail.typography import either
from tests.e2e.helpers import log_in
from tests.helpers import STRONG_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_unknown_page_says_so_in_french_with_the_way_back(page, a11y):
    response = page.goto("/page-qui-n-existe-pas")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1, name="Page introuvable")).to_be_visible()
    a11y(page)
    page.get_by_role("link", name="Retour à l'écran d'accueil").click()
    expect(page).to_have_url(re.compile(r"/auth/login$"))
    a11y(page)


def test_too_many_attempts_is_said_on_the_login_page_with_what_to_do(
    page, a11y, active_user, settings
):
    # The live server runs in this process: a smaller threshold keeps the test short.
    settings.PORTAIL_LOGIN_FAILURES_BEFORE_DELAY = 2
    page.goto("/auth/login")
    a11y(page)
    for _ in range(2):
        log_in(page, "jean.dupont", "pas le bon")
        expect(page.get_by_role("alert")).to_contain_text(
            either("L'identifiant ou le mot de passe est incorrect.")
        )
    log_in(page, "jean.dupont", STRONG_PASSWORD)
    expect(page.get_by_role("heading", level=1, name="Connexion")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(
        re.compile(r"Par sécurité, veuillez patienter \d+ minutes? avant de réessayer")
    )
    expect(page.get_by_role("alert")).to_contain_text("référent ENT de votre établissement")
    expect(page.get_by_role("link", name="Besoin d'aide ?", exact=True)).to_be_visible()
    a11y(page)


def test_expired_form_gives_the_french_csrf_page(page, a11y, context, active_user):
    page.goto("/auth/login")
    a11y(page)
    context.clear_cookies()  # as when the browser dropped its cookies, or the form is stale
    log_in(page, "jean.dupont", STRONG_PASSWORD)
    expect(page.get_by_role("heading", level=1, name="Page expirée")).to_be_visible()
    a11y(page)
