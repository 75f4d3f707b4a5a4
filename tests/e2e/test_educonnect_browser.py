"""Login with ÉduConnect in Chromium: the portal's button, pysaml2's IdP on a loopback port
(its page posts the signed response cross-site, as ÉduConnect's does), back to the portal.
(issue 11, §4; the protocol's refusals are in tests/federation/test_educonnect.py.)"""

import re

import pytest
from playwright.sync_api import expect

from portail.accounts.models import Profile
from portail.typography import either
from tests.federation.saml_idp import EduConnectIdP, IdPHTTPServer, portal_sp_metadata
from tests.helpers import account

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

JOINTURE = {"FrEduCtRefId": ["AAF-1234567"], "sn": ["Martin"], "givenName": ["Léa"]}
STRANGER = {"FrEduCtRefId": ["AAF-0000000"], "sn": ["Martin"], "givenName": ["Léa"]}


@pytest.fixture(scope="module")
def saml_keys(tmp_path_factory):
    from portail.federation.idp.keys import generate_pair

    directory = tmp_path_factory.mktemp("saml-browser")
    generate_pair(directory / "sp.key", directory / "sp.crt", "test")
    return directory


@pytest.fixture
def educonnect(settings, live_server, saml_keys, tmp_path, school):
    base = live_server.url
    settings.PORTAIL_BASE_URL = base
    settings.PORTAIL_EDUCONNECT_KEY = str(saml_keys / "sp.key")
    settings.PORTAIL_EDUCONNECT_CERT = str(saml_keys / "sp.crt")
    sp = portal_sp_metadata(base, settings.PORTAIL_EDUCONNECT_KEY, settings.PORTAIL_EDUCONNECT_CERT)
    server = IdPHTTPServer(
        lambda idp_base: EduConnectIdP(saml_keys, idp_base, sp, name="browser-idp"),
        {"Léa Martin (élève)": JOINTURE, "Une autre élève": STRANGER},
        acs=base + "/federation/educonnect/acs",
        audience=base + "/federation/educonnect/metadata",
    )
    settings.PORTAIL_EDUCONNECT_METADATA = str(server.idp.write_metadata(tmp_path / "idp.xml"))
    pupil = account("lea.martin", "Léa", "Martin", "", [school], profile=Profile.ELEVE)
    pupil.external_source, pupil.external_id = "aaf", "AAF-1234567"
    pupil.save()
    with server:
        yield server


def test_pupil_logs_in_with_educonnect(page, a11y, educonnect):
    page.goto("/auth/login")
    button = page.get_by_role("button", name="Se connecter avec ÉduConnect")
    expect(button).to_be_visible()
    a11y(page)
    button.click()
    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/sso\?SAMLRequest="))
    a11y(page)
    page.get_by_role("button", name="Léa Martin (élève)").click()
    # Cross-site POST without the Lax session cookie, posted again by our page's script.
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_text("Léa")).to_be_visible()
    a11y(page)
    # Pages that move on at once (meta refresh; script): the relay page is checked without
    # JavaScript below; the « leaving » page is not held still for axe (known gap).
    a11y.checked.update({"/federation/educonnect/login", "/federation/educonnect/acs"})

    page.get_by_role("button", name="Se déconnecter").first.click()
    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/slo\?SAMLRequest="))
    a11y(page)
    assert educonnect.idp.logouts
    a11y.checked.add("/auth/logout")  # the same « leaving » page as /federation/educonnect/login


def test_relay_page_by_hand_and_a_stranger(browser, live_server, axe, educonnect):
    """The relay page as without its script (axe itself needs JavaScript): « Continuer »."""
    from tests.e2e.conftest import A11y, _new_page

    checker = A11y(axe)
    context, page = _new_page(browser, checker, live_server.url)
    page.route(
        "**/federation/resubmit.js",
        lambda route: route.fulfill(body="", content_type="text/javascript"),
    )
    try:
        page.goto("/auth/login")
        checker(page)
        page.get_by_role("button", name="Se connecter avec ÉduConnect").click()
        # The page leaving for ÉduConnect moves on at once (meta refresh): not held for axe.
        checker.checked.add("/federation/educonnect/login")
        checker_idp = page.get_by_role("button", name="Une autre élève")
        expect(checker_idp).to_be_visible()
        checker(page)
        checker_idp.click()
        continue_button = page.get_by_role("button", name="Continuer")
        expect(continue_button).to_be_visible()
        checker(page)
        continue_button.click()
        expect(page.get_by_role("alert")).to_contain_text(
            either("ne correspond à aucun compte de l'ENT")
        )
        expect(page.get_by_role("alert")).to_contain_text("référent ENT")
        checker(page)
        assert not checker.unchecked()
    finally:
        context.close()
