"""« Mot de passe oublié » behind the proof-of-work challenge, in Chromium: solved by the page
itself, worded for the request, announced to screen readers, keyboard only, clean for axe-core."""

import re

import pytest
from playwright.sync_api import expect

from portail.mail.models import OutgoingMail
from portail.recovery import services
from portail.security import ratelimit
from portail.security.models import UsedChallenge

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

READY = "Vérification de sécurité terminée. Vous pouvez valider."


@pytest.fixture
def recovery_over_budget(settings):
    """The live server's client (127.0.0.1) has sent more recovery requests than its budget."""
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "recovery:address": (3, 900)}
    settings.PORTAIL_CHALLENGE_MAX_NUMBER = 20_000  # quick on a loaded CI box
    ratelimit.add("recovery:address", "ip:127.0.0.1", 5)


def status(page):
    return page.get_by_role("status").filter(has_text="érification de sécurité")


def test_lost_password_challenge_solved_by_itself_then_sent_with_the_keyboard(
    page, a11y, active_user, recovery_over_budget
):
    page.goto("/auth/help")
    a11y(page)
    # Keyboard only, from the help page: Tab to « Vous avez perdu votre mot de passe ? », Enter.
    link = page.get_by_role("link", name="Vous avez perdu votre mot de passe ?")
    for _ in range(30):
        page.keyboard.press("Tab")
        if link.evaluate("el => el === document.activeElement"):
            break
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/auth/lost-password$"))
    expect(status(page)).to_have_text(READY)
    expect(status(page)).to_have_attribute("aria-live", "polite")
    a11y(page)  # the page with the challenge, solved

    expect(page.get_by_label("Identifiant")).to_be_focused()
    page.keyboard.type("jean.dupont")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/auth/lost-password\?envoye=1$"))
    expect(page.get_by_text(services.RESET_SENT_MESSAGE)).to_be_visible()
    a11y(page)
    assert UsedChallenge.objects.count() == 1
    assert OutgoingMail.objects.filter(to="jean.dupont@example.org").count() == 1


def test_enter_before_the_challenge_is_done_sends_once_solved(
    page, a11y, active_user, recovery_over_budget, settings
):
    settings.PORTAIL_CHALLENGE_MAX_NUMBER = 60_000
    page.goto("/auth/lost-password")
    a11y(page)  # the challenge under way
    page.keyboard.type("jean.dupont")
    page.keyboard.press("Enter")  # at once: the page waits for the solution, then sends itself
    expect(page).to_have_url(re.compile(r"\?envoye=1$"))
    expect(page.get_by_text(services.RESET_SENT_MESSAGE)).to_be_visible()
    a11y(page)
    assert OutgoingMail.objects.filter(to="jean.dupont@example.org").count() == 1
