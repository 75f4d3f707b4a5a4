"""Issue 11's « Done when », each journey in one real browser (Chromium through Playwright), with
axe-core on the portal's pages:

1. the pupil: « Se connecter avec ÉduConnect » (pysaml2's IdP plays ÉduConnect, the account matched
   by jointure), the home page, the SAML resource's tile (pysaml2's SP registered as a
   ServiceProvider, the GAR attributes released: a GAR stand-in), the resource reached without
   typing anything again; then « Se déconnecter » ends the SAML session at the resource (a signed
   LogoutRequest for its NameID and SessionIndex) AND at ÉduConnect;
2. the parent: FranceConnect (Node's oidc-provider) the first time, linked by the ENT password;
   logout; the second time straight through; « Mon compte » shows the link; unlink.

Pages that are not the portal's (the IdP, the OP, the resource) are not the portal's to fix: they
are marked as seen, not checked. The portal's pages that move on by themselves at once (SAML POST
relay, « leaving » pages) cannot be held still for axe; they are named where they are marked.
The front-channel logout page is held still (its script left out) and checked in the last test.
"""

import os
import re
import subprocess

import pytest
from playwright.sync_api import expect
from saml2 import BINDING_HTTP_REDIRECT

from portail.accounts.models import Profile
from portail.audit.models import Event
from portail.federation.idp.keys import generate_pair
from portail.federation.idp.models import PersonIdentifier, SamlSession
from portail.federation.login.models import FranceConnectLink
from portail.typography import either
from tests.federation.conftest import make_sp
from tests.federation.saml_idp import EduConnectIdP, IdPHTTPServer, portal_sp_metadata
from tests.helpers import STRONG_PASSWORD, account
from tests.interop.portal import require_tool
from tests.servers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

JOINTURE = {"FrEduCtRefId": ["AAF-1234567"], "sn": ["Martin"], "givenName": ["Léa"]}
NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "federation", "node")
CLIENT_ID = "portail-ent"
CLIENT_SECRET = "un-secret-de-test-suffisamment-long-0123456789"


@pytest.fixture
def portal(live_server, settings, tmp_path):
    """The live server as SAML IdP (for the resource) and SP (of ÉduConnect)."""
    base = live_server.url
    settings.PORTAIL_BASE_URL = base
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.PORTAIL_GAR_ID_ENT = "ENT-IDF"
    settings.PORTAIL_SAML_KEY = str(tmp_path / "idp-key.pem")
    settings.PORTAIL_SAML_CERT = str(tmp_path / "idp-cert.pem")
    generate_pair(tmp_path / "idp-key.pem", tmp_path / "idp-cert.pem", "test IdP")
    settings.PORTAIL_EDUCONNECT_KEY = str(tmp_path / "sp.key")
    settings.PORTAIL_EDUCONNECT_CERT = str(tmp_path / "sp.crt")
    generate_pair(tmp_path / "sp.key", tmp_path / "sp.crt", "test")
    return base


@pytest.fixture
def educonnect(portal, settings, tmp_path):
    sp = portal_sp_metadata(
        portal, settings.PORTAIL_EDUCONNECT_KEY, settings.PORTAIL_EDUCONNECT_CERT
    )
    server = IdPHTTPServer(
        lambda idp_base: EduConnectIdP(tmp_path, idp_base, sp, name="journey-idp"),
        {"Léa Martin (élève)": JOINTURE},
        acs=portal + "/federation/educonnect/acs",
        audience=portal + "/federation/educonnect/metadata",
    )
    settings.PORTAIL_EDUCONNECT_METADATA = str(server.idp.write_metadata(tmp_path / "idp.xml"))
    with server:
        yield server


@pytest.fixture
def resource(portal, tmp_path, transactional_db):
    """pysaml2's SP as a GAR resource, registered with the GAR profile's attributes."""
    sp, registered = make_sp(portal, tmp_path, name="manuel", label="Manuel numérique")
    yield sp, registered
    sp.close()


def test_pupil_educonnect_then_resource_tile_then_logout_everywhere(
    page, a11y, live_server, school, educonnect, resource
):
    sp, registered = resource
    assert {"GARPersonIdentifiant", "idEnt", "GARStructureUAI", "GARPersonProfils"} <= set(
        registered.released_attributes
    )
    pupil = account("lea.martin", "Léa", "Martin", "", [school], profile=Profile.ELEVE)
    pupil.external_source, pupil.external_id = "aaf", "AAF-1234567"
    pupil.save()

    # 1. « Se connecter avec ÉduConnect », the pupil chosen at ÉduConnect, back home.
    page.goto("/auth/login")
    a11y(page)
    page.get_by_role("button", name="Se connecter avec ÉduConnect").click()
    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/sso\?SAMLRequest="))
    page.get_by_role("button", name="Léa Martin (élève)").click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("heading", name="Mes applications")).to_be_visible()
    a11y(page)
    assert (
        Event.objects.filter(tag="account.login", target=pupil).latest("id").data["method"]
        == "educonnect"
    )

    # 2. The resource's tile: IdP-initiated SSO, nothing typed.
    page.get_by_role("link", name="Manuel numérique").click()
    expect(page.get_by_role("heading", name="Ressource — Léa Martin")).to_be_visible()
    assert page.url.startswith(sp.acs)
    login = sp.logins[-1]
    assert "error" not in login, login
    ava = login["ava"]
    identifier = str(PersonIdentifier.objects.get(user=pupil).value)
    assert ava["GARPersonIdentifiant"] == [identifier]
    assert ava["idEnt"] == ["ENT-IDF"]
    assert ava["GARStructureUAI"] == ["0751234A"]
    assert ava["GARPersonProfils"] == ["National_elv"]
    assert SamlSession.objects.filter(provider=registered).count() == 1

    # 3. « Se déconnecter » on the portal: the resource's frame, then ÉduConnect's logout.
    page.goto("/")
    a11y(page)
    page.get_by_role("button", name="Se déconnecter").first.click()
    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/slo\?SAMLRequest="))
    expect(page.get_by_text("Vous êtes déconnecté d'ÉduConnect.")).to_be_visible()

    # The resource got a valid signed LogoutRequest for its NameID and SessionIndex.
    assert len(sp.logout_requests) == 1, sp.logout_requests
    received = sp.logout_requests[0]
    assert received["valid"], received
    assert received["name_id"] == login["name_id"]
    assert received["session_indexes"] == [login["session_index"]]
    assert not SamlSession.objects.exists()

    # ÉduConnect got its LogoutRequest, signed by the portal (checked by pysaml2's IdP).
    assert len(educonnect.idp.logouts) == 1
    query = educonnect.idp.logouts[0]
    request = educonnect.idp.server.parse_logout_request(
        query["SAMLRequest"],
        BINDING_HTTP_REDIRECT,
        relay_state=query.get("RelayState"),
        sigalg=query.get("SigAlg"),
        signature=query.get("Signature"),
    )
    assert request is not None and query.get("Signature")
    assert request.message.issuer.text == live_server.url + "/federation/educonnect/metadata"

    # The portal session is over.
    page.goto("/")
    expect(page.get_by_role("heading", name="Connexion", exact=True)).to_be_visible()
    a11y(page)

    a11y.checked.update(
        {
            # The portal's pages that move on at once (meta refresh; script):
            "/federation/educonnect/login",  # leaving for ÉduConnect
            "/federation/educonnect/acs",  # relay of the cross-site POST (checked by hand in
            # tests/e2e/test_educonnect_browser.py)
            f"/saml/initier/{registered.pk}",  # the SAML POST form to the resource
            "/auth/logout",  # the front-channel logout page, then ÉduConnect
            # Not the portal's: ÉduConnect's and the resource's pages.
            "/sso",
            "/slo",
            "/manuel/acs",
        }
    )


# --- The parent and FranceConnect --------------------------------------------------------------


@pytest.fixture(scope="module")
def provider(live_server):
    node = require_tool("node")
    npm = require_tool("npm")
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "oidc-provider")):
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OP_PORT": str(port),
        "OP_CLIENT_ID": CLIENT_ID,
        "OP_CLIENT_SECRET": CLIENT_SECRET,
        "OP_REDIRECT_URI": live_server.url + "/federation/franceconnect/callback",
        "OP_POST_LOGOUT_URI": live_server.url + "/auth/login",
    }
    process = subprocess.Popen(
        [node, os.path.join(NODE_DIR, "op.mjs")],
        cwd=NODE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in process.stdout:  # a wait for start-up, not an assertion on time
            if line.startswith("READY "):
                break
        else:
            pytest.fail("oidc-provider did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def franceconnect(settings, live_server, provider):
    settings.PORTAIL_BASE_URL = live_server.url
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.PORTAIL_FRANCECONNECT_ISSUER = provider
    settings.PORTAIL_FRANCECONNECT_CLIENT_ID = CLIENT_ID
    settings.PORTAIL_FRANCECONNECT_CLIENT_SECRET = CLIENT_SECRET
    settings.PORTAIL_FEDERATION_ALLOW_LOOPBACK = True
    return provider


def _at_franceconnect(page, provider, sub):
    """The person at FranceConnect (oidc-provider's development login form: any password)."""
    expect(page).to_have_url(re.compile("^" + re.escape(provider) + "/"))
    page.locator("input[name=login]").fill(sub)
    page.locator("input[name=password]").fill("peu importe")
    page.locator("button[type=submit]").first.click()


def _fc_button(page):
    return page.get_by_role("button", name=re.compile("S’identifier avec\\s+FranceConnect"))


def test_parent_links_franceconnect_once_then_logs_in_with_it_then_unlinks(
    page, a11y, live_server, school, franceconnect
):
    provider = franceconnect
    parent = account(
        "camille.parent",
        "Camille",
        "Parent",
        "",
        [school],
        password=STRONG_PASSWORD,
        profile=Profile.PARENT,
    )

    # 1. First time: FranceConnect proves the person; the portal asks the ENT password once.
    page.goto("/auth/login")
    a11y(page)
    _fc_button(page).click()
    _at_franceconnect(page, provider, "fc-sub-camille")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    expect(page.get_by_text("pour lier votre identité FranceConnect")).to_be_visible()
    a11y(page)
    assert not FranceConnectLink.objects.exists()
    page.get_by_label("Identifiant").fill("camille.parent")
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("heading", name="Mes applications")).to_be_visible()
    a11y(page)
    link = FranceConnectLink.objects.get(user=parent)
    assert link.sub == "fc-sub-camille" and link.issuer == provider

    # 2. Logout: the portal, then FranceConnect's own end of session.
    page.get_by_role("button", name="Se déconnecter").first.click()
    expect(page).to_have_url(re.compile("^" + re.escape(provider) + "/session/end"))
    # oidc-provider asks whether to log out of the provider too: yes.
    page.locator("button[autofocus], button[type=submit]").first.click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url) + r"/auth/login"))
    page.goto("/")
    expect(page.get_by_role("heading", name="Connexion", exact=True)).to_be_visible()
    a11y(page)

    # 3. Second time: straight through, no password.
    _fc_button(page).click()
    _at_franceconnect(page, provider, "fc-sub-camille")
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("heading", name="Mes applications")).to_be_visible()
    event = Event.objects.filter(tag="account.login", target=parent).latest("id")
    assert event.data["method"] == "franceconnect"

    # 4. « Mon compte » shows the link; the parent removes it.
    page.goto("/compte/")
    section = page.get_by_role("region", name="Connexion avec FranceConnect")
    expect(section).to_contain_text("Votre compte est lié à une identité FranceConnect")
    a11y(page)
    section.get_by_role("button", name="Supprimer la liaison avec FranceConnect").click()
    expect(page.get_by_text(either("Votre compte n'est pas lié à FranceConnect"))).to_be_visible()
    a11y(page)
    assert not FranceConnectLink.objects.filter(user=parent).exists()
    assert Event.objects.filter(tag="federation.franceconnect.unlinked", target=parent).exists()

    a11y.checked.update(
        {
            "/federation/franceconnect/login",  # leaving for FranceConnect (meta refresh)
            "/federation/franceconnect/callback",
            "/auth/logout",  # leaving for FranceConnect's end of session (meta refresh)
            "/federation/franceconnect/unlink",
        }
    )
    # Not the portal's: oidc-provider's pages (authorization, interactions, end of session).
    a11y.checked.update(
        p
        for p in a11y.visited
        if p == "/auth"
        or p.startswith(("/interaction/", "/session/"))
        or (p.startswith("/auth/") and p not in {"/auth/login", "/auth/logout"})
    )


def test_the_logout_page_held_still_for_axe_and_by_hand(
    page, a11y, live_server, school, educonnect, resource
):
    """The front-channel logout page of the pupil's journey as without its script (axe itself
    needs JavaScript): the resource's frame loads anyway, « Continuer » goes on to ÉduConnect."""
    sp, registered = resource
    pupil = account("lea.martin", "Léa", "Martin", "", [school], profile=Profile.ELEVE)
    pupil.external_source, pupil.external_id = "aaf", "AAF-1234567"
    pupil.save()
    page.goto("/auth/login")
    a11y(page)
    page.get_by_role("button", name="Se connecter avec ÉduConnect").click()
    page.get_by_role("button", name="Léa Martin (élève)").click()
    expect(page.get_by_role("heading", name="Mes applications")).to_be_visible()
    page.get_by_role("link", name="Manuel numérique").click()
    expect(page.get_by_role("heading", name="Ressource — Léa Martin")).to_be_visible()
    page.goto("/")
    a11y(page)

    page.route(
        "**/federation_idp/saml.js",
        lambda route: route.fulfill(body="", content_type="text/javascript"),
    )
    page.get_by_role("button", name="Se déconnecter").first.click()
    expect(page.get_by_role("heading", name="Déconnexion en cours")).to_be_visible()
    page.wait_for_load_state("load")  # the window's load event follows its frames'
    a11y(page)
    assert len(sp.logout_requests) == 1 and sp.logout_requests[0]["valid"], sp.logout_requests
    assert not educonnect.idp.logouts
    page.get_by_role("link", name="Continuer").click()
    expect(page.get_by_text("Vous êtes déconnecté d'ÉduConnect.")).to_be_visible()
    assert len(educonnect.idp.logouts) == 1

    a11y.checked.update(
        {
            "/federation/educonnect/login",  # leaving for ÉduConnect (meta refresh)
            "/federation/educonnect/acs",  # the cross-site POST's relay
            f"/saml/initier/{registered.pk}",  # the SAML POST form to the resource
            "/sso",  # ÉduConnect's
            "/slo",  # ÉduConnect's
            "/manuel/acs",  # the resource's
        }
    )
