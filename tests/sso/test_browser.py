"""The issue's "done when", in Chromium: log in once, open two applications, log out of both."""

import os
import secrets
import shutil

import pytest
from oauth2_provider.models import Application as Client

from portail.sso.models import Application
from tests.conftest import STRONG_PASSWORD

from .demo_apps import DemoApps

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def demo_apps(live_server, settings):
    # The test's live server speaks plain HTTP: its cookies cannot be Secure here.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    # The demo applications listen on 127.0.0.1: let the outbound guard reach them (tests only).
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = True
    # …and the demo applications too: their redirect URI is http://127.0.0.1 (as in DEBUG).
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    }
    with DemoApps(live_server.url) as apps:
        secret = secrets.token_urlsafe(32)
        client = Client.objects.create(
            name="Moodle",
            client_type=Client.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
            redirect_uris=apps.url + "/moodle/callback",
            client_secret=secret,
            algorithm=Client.RS256_ALGORITHM,
            skip_authorization=True,
        )
        apps.oidc_client_id, apps.oidc_secret = client.client_id, secret
        Application.objects.create(
            name="Vie scolaire",
            short_label="VS",
            description="Notes et absences",
            url=apps.url + "/vie-scolaire/",
            kind=Application.Kind.CAS,
            cas_service_patterns=apps.url + "/vie-scolaire/",
        )
        Application.objects.create(
            name="Moodle",
            short_label="MO",
            description="Cours en ligne",
            url=apps.url + "/moodle/",
            kind=Application.Kind.OIDC,
            oidc_client=client,
            oidc_backchannel_logout_uri=apps.url + "/moodle/backchannel",
        )
        yield apps


@pytest.fixture
def page(browser):
    # The session's one Chromium (tests/browser.py); the ORM shares this thread with Playwright.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    context = browser.new_context(bypass_csp=True)  # lets axe-core be injected, nothing else
    yield context.new_page()
    context.close()


def assert_accessible(page):
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_pupil_logs_in_once_opens_two_applications_and_logs_out_of_both(
    page, demo_apps, active_user, live_server
):
    page.goto(live_server.url + "/auth/login")
    page.get_by_label("Identifiant").fill("jean.dupont")
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    page.get_by_role("heading", name="Mes applications").wait_for()
    assert_accessible(page)  # the tiles

    page.get_by_role("link", name="Vie scolaire").click()
    page.get_by_role("heading", name="Vie scolaire — Jean Dupont").wait_for()

    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Moodle").click()
    page.get_by_role("heading", name="Moodle — Jean Dupont").wait_for()

    page.goto(live_server.url + "/")
    page.get_by_role("button", name="Se déconnecter").click()
    page.get_by_role("heading", name="Connexion").wait_for()
    assert sorted(demo_apps.logouts) == ["moodle", "vie-scolaire"]

    # Each application lost its session: it sends the browser back to the portal's login.
    page.goto(demo_apps.url + "/vie-scolaire/")
    page.get_by_role("heading", name="Connexion").wait_for()
    page.goto(demo_apps.url + "/moodle/")
    page.get_by_role("heading", name="Connexion").wait_for()


def test_cas_login_from_the_application_comes_back_signed_in(
    page, demo_apps, active_user, live_server
):
    # The application first: it sends the browser to the portal, which asks the password once.
    page.goto(demo_apps.url + "/vie-scolaire/")
    page.get_by_label("Identifiant").fill("jean.dupont")
    page.get_by_label("Mot de passe", exact=True).fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    page.get_by_role("heading", name="Vie scolaire — Jean Dupont").wait_for()
    # And the second application needs no password at all.
    page.goto(demo_apps.url + "/moodle/")
    page.get_by_role("heading", name="Moodle — Jean Dupont").wait_for()


def test_unknown_service_page_is_french_and_accessible(page, demo_apps, live_server):
    page.goto(live_server.url + "/cas/login?service=https%3A%2F%2Fevil.example.test%2F")
    page.get_by_role("heading", name="Accès refusé").wait_for()
    assert "Ce service n'est pas autorisé" in page.get_by_role("alert").inner_text()
    assert_accessible(page)
    page.goto(live_server.url + "/cas/logout")
    page.get_by_role("heading", name="Vous êtes déconnecté").wait_for()
    assert_accessible(page)
