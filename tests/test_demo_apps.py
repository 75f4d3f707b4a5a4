"""`make run`'s living portal over HTTP: log in, follow each tile, land signed in to the demo
CAS and OpenID Connect applications; then one signal stops the portal and both applications."""

import re
import time
from html import unescape

import pytest
import requests

from tests.demo_launcher import DEMO_PASSWORD, _listening, demo_running


def visible(html):
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def portal_login(session, portal):
    page = session.get(portal + "/auth/login", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        portal + "/auth/login",
        data={
            "csrfmiddlewaretoken": token,
            "identifier": "parent.test",
            "password": DEMO_PASSWORD,
        },
        headers={"Referer": portal + "/auth/login"},
        timeout=30,
    )


def test_a_newcomer_follows_both_tiles_and_is_signed_in(tmp_path):
    with demo_running(tmp_path) as demo:
        session = requests.Session()
        home = portal_login(session, demo["portal"])
        assert home.url == demo["portal"] + "/"
        tiles = re.findall(
            r'<li class="tile">\s*<a href="([^"]+)">\s*<img class="tile__image" src="([^"]+)" '
            r'alt=""[^>]*>\s*<span class="tile__name">([^<]+)</span>',
            home.text,
        )
        assert [(url, name) for url, _, name in tiles] == [
            (demo["cas"] + "/", "Cahier de textes"),
            (demo["oidc"] + "/", "Classeur"),
        ]
        for _, icon, _ in tiles:  # the icons are served
            assert (
                session.get(demo["portal"] + icon, timeout=10)
                .headers["Content-Type"]
                .startswith("image/svg+xml")
            )

        # CAS: /cas/login, a ticket, serviceValidate by the application, its page.
        cas = session.get(demo["cas"] + "/", timeout=30)
        text = visible(cas.text)
        assert cas.url == demo["cas"] + "/"
        assert "Bonjour Parent Test" in text and "Cahier de textes" in text
        assert "displayName Parent Test" in text and "entProfile parent" in text
        assert f'href="{demo["portal"]}/"' in cas.text  # back to the portal

        # OpenID Connect: code + PKCE, the ID token verified, its claims shown.
        oidc = session.get(demo["oidc"] + "/", timeout=30)
        text = visible(oidc.text)
        assert oidc.url == demo["oidc"] + "/"
        assert "Bonjour Parent Test" in text and "Classeur" in text
        assert f"iss {demo['portal']}/o" in text and "aud demo-classeur" in text
        assert "acr urn:portail:acr:pwd" in text

        # Without the portal session, the applications send the browser to the portal's login.
        stranger = requests.Session()
        page = stranger.get(demo["cas"] + "/", timeout=30)
        assert page.url.startswith(demo["portal"] + "/auth/login")

        # Logging out of the portal logs out of the CAS application (single logout).
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', home.text).group(1)
        session.post(
            demo["portal"] + "/auth/logout",
            data={"csrfmiddlewaretoken": token},
            headers={"Referer": demo["portal"] + "/"},
            timeout=30,
        )
        again = session.get(demo["cas"] + "/", allow_redirects=False, timeout=30)
        assert again.status_code == 302 and "/cas/login" in again.headers["Location"]

        ports = demo["ports"].values()
    # One SIGTERM (as Ctrl-C) stopped the launcher, the portal it started and both applications.
    deadline = time.monotonic() + 10
    while any(_listening(port) for port in ports):
        assert time.monotonic() < deadline, "a demo process is still listening"
        time.sleep(0.2)


@pytest.mark.django_db
def test_load_demo_registers_the_applications_once(capsys):
    from django.core.management import call_command

    from portail.sso.models import Application

    for _ in range(2):
        call_command(
            "load_demo",
            "--cas-app-url",
            "http://127.0.0.1:9001",
            "--oidc-app-url",
            "http://127.0.0.1:9002/",
        )
    apps = {app.name: app for app in Application.objects.all()}
    assert set(apps) == {"Cahier de textes", "Classeur"}
    assert apps["Cahier de textes"].matches_service("http://127.0.0.1:9001/")
    assert apps["Classeur"].oidc_client.redirect_uris == "http://127.0.0.1:9002/callback"
    assert apps["Classeur"].oidc_client.client_type == "public"
    assert "Application OpenID Connect « Classeur »" in capsys.readouterr().out
