"""The proof-of-work challenge in Chromium: solved by the page itself, with the keyboard only,
announced to screen readers, and clean for axe-core."""

import re

import pytest
from playwright.sync_api import expect

from portail.security import ratelimit
from portail.security.models import UsedChallenge
from tests.helpers import STRONG_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def address_over_budget(settings):
    """The live server's client (127.0.0.1) has sent more failures than its budget allows."""
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "login:address": (3, 900)}
    # Small enough for a loaded CI box; the real difficulty is PORTAIL_CHALLENGE_MAX_NUMBER's.
    settings.PORTAIL_CHALLENGE_MAX_NUMBER = 20_000
    ratelimit.add("login:address", "ip:127.0.0.1", 5)


def status(page):
    return page.get_by_role("status").filter(has_text="vérification de sécurité")


def test_the_challenge_is_solved_by_itself_and_announced_then_keyboard_login(
    page, a11y, active_user, address_over_budget
):
    page.goto("/auth/login")
    expect(status(page)).to_have_text(
        "Vérification de sécurité terminée. Vous pouvez vous connecter."
    )
    expect(status(page)).to_have_attribute("aria-live", "polite")
    a11y(page)  # the page with the challenge, solved

    # Keyboard only: the identifier field has the focus; Tab to the password; Enter sends.
    expect(page.get_by_label("Identifiant")).to_be_focused()
    page.keyboard.type("jean.dupont")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Mot de passe", exact=True)).to_be_focused()
    page.keyboard.type(STRONG_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_text("Jean Dupont")).to_be_visible()
    a11y(page)
    assert UsedChallenge.objects.count() == 1


def test_pressing_enter_before_the_challenge_is_done_submits_once_solved(
    page, a11y, active_user, address_over_budget, settings
):
    settings.PORTAIL_CHALLENGE_MAX_NUMBER = 60_000
    page.goto("/auth/login")
    a11y(page)  # the page with the challenge under way
    page.keyboard.type("jean.dupont")
    page.keyboard.press("Tab")
    page.keyboard.type(STRONG_PASSWORD)
    page.keyboard.press("Enter")  # at once: the page waits for the solution, then sends itself
    expect(page).to_have_url(re.compile(r"/$"))
    a11y(page)
    assert UsedChallenge.objects.count() == 1


def test_a_post_without_solution_shows_the_challenge_and_the_help_link(
    page, a11y, active_user, settings
):
    # The address goes over budget between showing the page and sending it.
    settings.PORTAIL_CHALLENGE_MAX_NUMBER = 20_000
    page.goto("/auth/login")
    a11y(page)
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "login:address": (3, 900)}
    ratelimit.add("login:address", "ip:127.0.0.1", 5)
    page.get_by_label("Identifiant").fill("jean.dupont")
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_text("une vérification automatique de votre navigateur")).to_be_visible()
    expect(page.get_by_role("link", name="Besoin d'aide ?")).to_be_visible()
    expect(page.get_by_label("Identifiant")).to_have_value("jean.dupont")
    expect(status(page)).to_have_text(
        "Vérification de sécurité terminée. Vous pouvez vous connecter."
    )
    a11y(page)
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Connexion").press("Enter")
    expect(page).to_have_url(re.compile(r"/$"))
    a11y(page)
