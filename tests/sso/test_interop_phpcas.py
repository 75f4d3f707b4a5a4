"""Interoperability with phpCAS (Debian's php-cas, the CAS client Moodle bundles), against a
running `portail serve` (issue 9, point 7).

tests/interop/php/index.php runs under `php -S` as a school application: CAS 3.0 login through
the portal's form, ticket validation by phpCAS with the released attributes, single logout
(the portal's logoutRequest ends phpCAS's session), the application's own logout, and the
silent check of CAS gateway (phpCAS::checkAuthentication).
"""

import os
import subprocess
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.interop.portal import INTEROP, portal, require_tool, wait_for

__all__ = ["portal"]  # the module fixture


@pytest.fixture(scope="module")
def php_app(portal, tmp_path_factory):
    php = require_tool("php")
    check = subprocess.run(
        [php, "-r", "require 'CAS.php'; echo phpCAS::getVersion();"], capture_output=True, text=True
    )
    if check.returncode != 0:
        message = "php-cas is not installed (apt-get install php-cas php-curl php-xml)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {message}", pytrace=False)
        pytest.skip(message)
    sessions = tmp_path_factory.mktemp("php-sessions")
    log = sessions / "php.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [
                php,
                "-d",
                f"session.save_path={sessions}",
                "-d",
                "display_errors=0",
                "-d",
                "log_errors=1",
                "-S",
                f"127.0.0.1:{portal['php_port']}",
                "-t",
                str(INTEROP / "php"),
            ],
            env={
                "PATH": "/usr/bin:/bin",
                "PORTAL": portal["base"],
                "SERVICE": portal["cas_service"],
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(portal["cas_service"] + "?status=1", server, log, seconds=30)
        yield {"url": portal["cas_service"], "version": check.stdout, "log": log}
    finally:
        server.terminate()
        server.wait(timeout=10)


class Browser:
    """requests with the portal's Secure cookies kept on loopback http, redirects followed by hand
    (the portal's login form filled in when it shows up)."""

    def __init__(self, portal):
        self.portal = portal
        self.session = requests.Session()

    def request(self, method, url, **kwargs):
        response = self.session.request(method, url, allow_redirects=False, timeout=30, **kwargs)
        for cookie in self.session.cookies:
            cookie.secure = False  # a browser on https would send them; here it is loopback http
        return response

    def get(self, url):
        return self.request("GET", url)

    def navigate(self, url, login=True):
        for _ in range(10):
            response = self.get(url)
            if response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                continue
            if login and urlsplit(url).path == "/auth/login":
                token = self.session.cookies.get("csrftoken")
                posted = self.request(
                    "POST",
                    url,
                    data={
                        "csrfmiddlewaretoken": token,
                        "identifier": self.portal["identifier"],
                        "password": self.portal["password"],
                    },
                )
                assert posted.status_code == 302, posted.text
                url = urljoin(url, posted.headers["Location"])
                continue
            return url, response
        raise AssertionError("too many redirects")


def test_phpcas_logs_in_reads_attributes_and_honours_single_logout(portal, php_app):
    browser = Browser(portal)
    url, response = browser.navigate(php_app["url"])
    assert response.status_code == 200, response.text + php_app["log"].read_text()
    assert url == php_app["url"]  # phpCAS removed the ticket from its URL after validating it
    assert response.headers["Content-Type"].startswith("application/json"), response.text[:3000]
    assert response.text.startswith("{"), response.text[:3000] + php_app["log"].read_text()[-3000:]
    seen = response.json()
    assert seen["user"] == "lea.martin"
    attributes = seen["attributes"]
    assert attributes["displayName"] == "Léa Martin"
    assert attributes["firstName"] == "Léa"
    assert attributes["entProfile"] == "eleve"
    assert attributes["uai"] == "0751234A"
    assert attributes["classes"] == "2nde 3"
    assert attributes["email"] == "lea.martin@example.org"
    status = browser.get(php_app["url"] + "?status=1")
    assert status.text.startswith("{"), status.text[:2000]
    assert status.json() == {"user": "lea.martin"}

    # Logging out on the portal: its logoutRequest reaches phpCAS, which ends its own session.
    browser.navigate(portal["base"] + "/cas/logout", login=False)
    assert browser.get(php_app["url"] + "?status=1").json() == {"user": None}


def test_phpcas_logout_ends_the_portal_session_and_comes_back(portal, php_app):
    browser = Browser(portal)
    _, response = browser.navigate(php_app["url"])
    assert response.json()["user"] == "lea.martin"
    url, response = browser.navigate(php_app["url"] + "?logout=1", login=False)
    # CAS 3.0 §2.3.1: back to the registered service, which asks the portal again: login page.
    assert urlsplit(url).path == "/auth/login", url
    assert browser.get(php_app["url"] + "?status=1").json() == {"user": None}


def test_phpcas_gateway_is_silent_with_and_without_a_portal_session(portal, php_app):
    browser = Browser(portal)
    # No portal session: back to the application without a ticket, never the login form.
    url, response = browser.navigate(php_app["url"] + "?gateway=1", login=False)
    assert urlsplit(url).path == "/", url
    assert response.json() == {"user": None}

    browser.navigate(portal["base"] + "/auth/login")  # logged in on the portal only
    other_app_session = Browser(portal)  # the same portal session, a new application session
    other_app_session.session.cookies.update(
        {k: v for k, v in browser.session.cookies.items() if k != "PHPSESSID"}
    )
    url, response = other_app_session.navigate(php_app["url"] + "?gateway=1", login=False)
    assert response.json() == {"user": "lea.martin"}
