"""Every page of tests/public_pages.py (public, logged in, the console's) at 1280 and 375 px: no horizontal scroll, axe-core clean
(WCAG A/AA and best practices), the brand header and the legal footer; in an error state the error
summary has focus, is announced (role=alert) and the title starts with « Erreur : ».
"""

import re

import pytest
from playwright.sync_api import expect

from portail.directory.models import Function
from portail.typography import problems, visible_text
from tests.console.conftest import enrol, staff, totp_now
from tests.e2e.conftest import _new_page
from tests.e2e.helpers import log_in
from tests.helpers import STRONG_PASSWORD
from tests.public_pages import PUBLIC_PAGES, SIZES, visit

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(params=list(SIZES), ids=list(SIZES))
def sized_page(request, browser, live_server, a11y):
    width, height = SIZES[request.param]
    context, page = _new_page(
        browser, a11y, live_server.url, viewport={"width": width, "height": height}
    )
    yield page
    context.close()


@pytest.fixture
def referent(school):
    user = staff("anne.martin", school)
    Function.objects.create(user=user, role=Function.Role.REFERENT, structure=school)
    enrol(user)
    return user


@pytest.mark.parametrize("public_page", PUBLIC_PAGES, ids=[p.name for p in PUBLIC_PAGES])
def test_public_page_fits_is_accessible_and_has_brand_and_footer(
    sized_page, a11y, public_page, pending_pupil, active_user, referent, school_class
):
    page = sized_page
    user, code = pending_pupil
    logins = {
        "user": (active_user.identifier, STRONG_PASSWORD),
        "referent": (referent.identifier, STRONG_PASSWORD, totp_now),
    }
    response = visit(
        page, public_page, pending=(user.identifier, code), on_page=a11y, logins=logins
    )
    if response is not None:
        assert response.status == public_page.status
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{public_page.name}: {scroll} px wide in a {inner} px window"
    expect(page.get_by_role("banner").get_by_role("link", name=re.compile("^ENT"))).to_be_visible()
    footer = page.get_by_role("contentinfo")
    for name in ["Mentions légales", "Données personnelles", "Charte d’utilisation"]:
        expect(footer.get_by_role("link", name=name)).to_be_visible()
    expect(
        footer.get_by_role("link", name="Accessibilité : partiellement conforme")
    ).to_be_visible()
    if public_page.errors:
        summary = page.locator("[data-error-summary]")
        expect(summary).to_have_attribute("role", "alert")
        expect(summary).to_be_focused()
        expect(page).to_have_title(re.compile(r"^Erreur\s:\s"))
    else:
        expect(page.locator("[data-error-summary]")).to_have_count(0)
    # French typography (portail.typography): NBSP before « : ; ! ? » and inside « », ’, 1re.
    # The class names are the schools' own data (« 2nde 3 »), shown as their directory writes them.
    found = problems(visible_text(page.content()).replace(school_class.name, ""))
    assert not found, f"{public_page.name}: " + "; ".join(map(str, found))
    a11y(page)


def test_wrong_login_focuses_the_summary_whose_link_leads_to_the_field(page, a11y, active_user):
    page.goto("/auth/login")
    a11y(page)
    log_in(page, "jean.dupont", "pas le bon")
    summary = page.get_by_role("alert")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("heading")).to_have_text("Erreur : 1 point à corriger")
    expect(page).to_have_title(re.compile(r"^Erreur\s:\sConnexion"))
    identifier = page.get_by_label("Identifiant")
    password = page.get_by_label("Mot de passe", exact=True)
    # Both fields are invalid and described by the summary; what was typed stays, not the password.
    for field in (identifier, password):
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile("incorrect"))
    expect(identifier).to_have_value("jean.dupont")
    expect(password).to_have_value("")
    a11y(page)
    summary.get_by_role("link").click()
    expect(identifier).to_be_focused()


def test_a_corrected_field_loses_its_stale_error(page, a11y):
    page.goto("/auth/lost-identifier")
    page.get_by_label("Adresse de messagerie").fill("pas-une-adresse")
    page.get_by_role("button", name="Envoyer").click()
    field = page.get_by_label("Adresse de messagerie")
    expect(field).to_have_attribute("aria-invalid", "true")
    error = page.locator("#id_email_error")
    expect(error).to_be_visible()
    a11y(page)
    field.fill("jean.dupont@example.org")
    expect(field).not_to_have_attribute("aria-invalid", "true")
    expect(error).to_be_hidden()
    expect(page.locator("[data-error-summary]")).to_be_hidden()
    a11y(page)


def test_a_logged_in_user_opening_the_login_page_goes_home(page, a11y, active_user):
    page.goto("/auth/login")
    a11y(page)
    log_in(page, "jean.dupont", STRONG_PASSWORD)
    expect(page).to_have_url(re.compile(r"/$"))
    # The URL changes before the page is parsed: axe waits for the home page's heading.
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    a11y(page)
    page.goto("/auth/login")
    expect(page).to_have_url(re.compile(r"/$"))
