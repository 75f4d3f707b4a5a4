"""Issue 11's « done when », in Chromium: a pupil opens a SAML resource (a GAR stand-in) from
its tile and from the resource itself, then logs out of the portal, which ends the resource's
SAML session. The portal's real CSP applies (form-action, frame-src): no bypass here."""

import os

import pytest

from tests.federation.conftest import make_sp
from tests.helpers import STRONG_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
# Playwright's sync API runs an event loop in this thread; the ORM shares the thread with it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def chromium_page(browser):
    context = browser.new_context(locale="fr-FR")
    yield context.new_page()
    context.close()


@pytest.fixture
def resource(portal, tmp_path):
    sp, registered = make_sp(portal, tmp_path, name="manuel", label="Manuel numérique")
    yield sp, registered
    sp.close()


def test_pupil_opens_the_resource_from_its_tile_and_logout_reaches_it(
    chromium_page, resource, pupil, portal
):
    sp, _ = resource
    page = chromium_page
    page.goto(portal + "/auth/login")
    page.get_by_label("Identifiant").fill("lea.martin")
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    page.get_by_role("heading", name="Mes applications").wait_for()

    # The tile: IdP-initiated SSO, the POST form sent by the page's script (CSP form-action).
    page.get_by_role("link", name="Manuel numérique").click()
    page.get_by_role("heading", name="Ressource — Léa Martin").wait_for()
    login = sp.logins[-1]
    assert login["ava"]["GARPersonProfils"] == ["National_elv"]

    # Logging out of the portal: the frame carries the LogoutRequest, then the login page.
    page.goto(portal + "/")
    page.get_by_role("button", name="Se déconnecter").click()
    page.get_by_role("heading", name="Connexion", exact=True).wait_for()
    assert len(sp.logout_requests) == 1
    received = sp.logout_requests[0]
    assert received["valid"], received
    assert received["name_id"] == login["name_id"]
    assert received["session_indexes"] == [login["session_index"]]


def test_logout_reaches_a_provider_whose_slo_is_http_post(chromium_page, portal, tmp_path, pupil):
    from saml2 import BINDING_HTTP_POST

    sp, _ = make_sp(portal, tmp_path, name="atlas", label="Atlas", slo_binding=BINDING_HTTP_POST)
    try:
        page = chromium_page
        page.goto(portal + "/auth/login")
        page.get_by_label("Identifiant").fill("lea.martin")
        page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
        page.get_by_role("button", name="Connexion").click()
        page.get_by_role("link", name="Atlas").click()
        page.get_by_role("heading", name="Ressource — Léa Martin").wait_for()
        page.goto(portal + "/")
        page.get_by_role("button", name="Se déconnecter").click()
        page.get_by_role("heading", name="Connexion", exact=True).wait_for()
        # The frame's portal page posted the signed LogoutRequest before the page moved on.
        assert len(sp.logout_requests) == 1
        assert sp.logout_requests[0]["valid"], sp.logout_requests[0]
        assert sp.logout_requests[0]["name_id"] == sp.logins[-1]["name_id"]
    finally:
        sp.close()


def test_the_resource_first_then_the_password_once(chromium_page, resource, pupil, portal):
    sp, _ = resource
    page = chromium_page
    page.goto(sp.base + "/manuel/start")
    page.get_by_label("Identifiant").fill("lea.martin")
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    page.get_by_role("heading", name="Ressource — Léa Martin").wait_for()
    assert sp.logins[-1]["relay_state"] == "/manuel"
    # Already logged in: straight through.
    page.goto(sp.base + "/manuel/start")
    page.get_by_role("heading", name="Ressource — Léa Martin").wait_for()
    assert len(sp.logins) == 2 and "error" not in sp.logins[-1]


def test_refusal_page_is_french_and_accessible(browser, axe, portal, pupil):
    context = browser.new_context(bypass_csp=True, locale="fr-FR")  # axe-core injected
    try:
        page = context.new_page()
        page.goto(portal + "/saml/sso?SAMLRequest=pas-du-saml")
        page.get_by_role("heading", name="Connexion à la ressource impossible").wait_for()
        assert "illisible" in page.get_by_role("alert").inner_text()
        results = axe.run(page)
        assert results.violations_count == 0, results.generate_report()
    finally:
        context.close()
