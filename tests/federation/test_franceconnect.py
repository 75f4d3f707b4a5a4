"""Login with FranceConnect: the portal as OpenID Connect RP of Node's oidc-provider (panva's,
a certified OP nobody here wrote), started on a loopback port (issue 11, §3 and §4).

The portal side runs in Django's test client; it reaches the provider (discovery, JWKS, token
endpoint) through the federation's outbound guard with PORTAIL_FEDERATION_ALLOW_LOOPBACK. The
user's side at the provider (its login form) is driven with `requests`.
"""

import html
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from jwcrypto import jwk, jwt

from portail.accounts.models import Profile
from portail.audit.models import Event
from portail.federation.login import franceconnect
from portail.federation.login.models import FranceConnectLink
from portail.typography import normalised
from tests.federation.saml_idp import moving_on
from tests.helpers import STRONG_PASSWORD, account
from tests.interop.portal import require_tool
from tests.servers import free_port

NODE_DIR = Path(__file__).parent / "node"
BASE = "https://ent.example.test"
CALLBACK = BASE + "/federation/franceconnect/callback"
CLIENT_ID = "portail-ent"
CLIENT_SECRET = "un-secret-de-test-suffisamment-long-0123456789"


@pytest.fixture(scope="module")
def provider():
    node = require_tool("node")
    npm = require_tool("npm")
    if not (NODE_DIR / "node_modules" / "oidc-provider").exists():
        # The lockfile's exact versions, from the npm registry.
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OP_PORT": str(port),
        "OP_CLIENT_ID": CLIENT_ID,
        "OP_CLIENT_SECRET": CLIENT_SECRET,
        "OP_REDIRECT_URI": CALLBACK,
        "OP_POST_LOGOUT_URI": BASE + "/auth/login",
    }
    process = subprocess.Popen(
        [node, str(NODE_DIR / "op.mjs")],
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
def fc(settings, provider):
    settings.PORTAIL_FRANCECONNECT_ISSUER = provider
    settings.PORTAIL_FRANCECONNECT_CLIENT_ID = CLIENT_ID
    settings.PORTAIL_FRANCECONNECT_CLIENT_SECRET = CLIENT_SECRET
    settings.PORTAIL_FEDERATION_ALLOW_LOOPBACK = True
    return provider


@pytest.fixture
def parent(school):
    return account(
        "camille.parent",
        "Camille",
        "Parent",
        "",
        [school],
        password=STRONG_PASSWORD,
        profile=Profile.PARENT,
    )


def start(client, next_url=""):
    return moving_on(client.post("/federation/franceconnect/login", {"next": next_url}))


def at_provider(location, login):
    """The person at FranceConnect: logs in as `login`; returns the callback's path and query."""
    browser = requests.Session()
    answer = browser.get(location, allow_redirects=True, timeout=10)
    action = re.search(r'<form[^>]*action="([^"]+)"', answer.text).group(1)
    answer = browser.post(
        urljoin(answer.url, html.unescape(action)),
        data={"prompt": "login", "login": login, "password": "peu importe"},
        allow_redirects=False,
        timeout=10,
    )
    while answer.status_code in (302, 303):
        target = urljoin(answer.url, answer.headers["Location"])
        if target.startswith(BASE):
            parts = urlsplit(target)
            return parts.path + "?" + parts.query
        answer = browser.get(target, allow_redirects=False, timeout=10)
    pytest.fail(f"no redirect back to the portal: {answer.status_code} {answer.text[:500]}")


def logged_in_as(client):
    response = client.get("/")
    return response.context["user"] if response.status_code == 200 else None


def test_button_and_link_to_what_is_franceconnect(client, fc, db, settings):
    page = html.unescape(client.get("/auth/login").content.decode())
    assert "S’identifier avec" in page and "FranceConnect" in page
    assert "Qu’est-ce que FranceConnect ?" in normalised(page)
    settings.PORTAIL_FRANCECONNECT_CLIENT_SECRET = ""
    assert "FranceConnect" not in client.get("/auth/login").content.decode()


def test_first_login_links_then_straight_through_then_unlink(client, fc, parent):
    # 1. FranceConnect proves the person; no account is linked yet: the login page asks for
    #    the ENT password once.
    callback = at_provider(start(client, "/compte/"), "fc-sub-camille")
    response = client.get(callback)
    assert response.status_code == 302 and response["Location"].startswith("/auth/login")
    page = html.unescape(client.get(response["Location"]).content.decode())
    assert "pour lier votre identité FranceConnect" in page
    assert logged_in_as(client) is None
    response = client.post(
        "/auth/login",
        {"identifier": "camille.parent", "password": STRONG_PASSWORD, "next": "/compte/"},
    )
    assert response.status_code == 302 and response["Location"] == "/compte/"
    link = FranceConnectLink.objects.get(user=parent)
    assert link.sub == "fc-sub-camille" and link.issuer == fc
    page = html.unescape(client.get("/compte/").content.decode())
    assert "Votre compte est lié à une identité FranceConnect" in page
    # The person came through FranceConnect: the logout ends its session there too.
    assert moving_on(client.post("/auth/logout")).startswith(fc + "/session/end?id_token_hint=")

    # 2. Next time, straight through.
    response = client.get(at_provider(start(client, "/compte/"), "fc-sub-camille"))
    assert response.status_code == 302 and response["Location"] == "/compte/"
    assert logged_in_as(client) == parent
    event = Event.objects.filter(tag="account.login").latest("id")
    assert event.data["method"] == "franceconnect"

    # 3. Logout also ends the session at FranceConnect (its end_session_endpoint).
    assert moving_on(client.post("/auth/logout")).startswith(fc + "/session/end?id_token_hint=")
    assert logged_in_as(client) is None

    # 4. Unlink on « Mon compte »: the next FranceConnect login asks for the password again.
    client.get(at_provider(start(client), "fc-sub-camille"))
    response = client.post("/federation/franceconnect/unlink")
    assert response.status_code == 302
    assert not FranceConnectLink.objects.filter(user=parent).exists()
    assert Event.objects.filter(tag="federation.franceconnect.unlinked", target=parent).exists()
    client.post("/auth/logout")
    response = client.get(at_provider(start(client), "fc-sub-camille"))
    assert response["Location"].startswith("/auth/login")
    assert logged_in_as(client) is None


def test_a_pupil_cannot_link(client, fc, school):
    account(
        "lea.martin",
        "Léa",
        "Martin",
        "",
        [school],
        password=STRONG_PASSWORD,
        profile=Profile.ELEVE,
    )
    client.get(at_provider(start(client), "fc-sub-lea"))
    response = client.post("/auth/login", {"identifier": "lea.martin", "password": STRONG_PASSWORD})
    assert response.status_code == 200
    assert "réservée aux parents" in html.unescape(response.content.decode())
    assert logged_in_as(client) is None
    assert not FranceConnectLink.objects.exists()


def refused(client, response, because):
    assert response.status_code == 400
    assert "La connexion avec FranceConnect n'a pas abouti" in normalised(
        html.unescape(response.content.decode())
    )
    assert logged_in_as(client) is None
    reason = Event.objects.filter(tag="federation.franceconnect.refused").latest("id")
    assert because in reason.data["reason"], reason.data


def test_wrong_state_is_refused(client, fc, parent):
    callback = at_provider(start(client), "fc-sub-camille")
    forged = re.sub(r"state=[^&]+", "state=forged", callback)
    refused(client, client.get(forged), "wrong state")


def test_wrong_nonce_is_refused(client, fc, parent):
    callback = at_provider(start(client), "fc-sub-camille")
    session = client.session
    session["franceconnect_request"] = {**session["franceconnect_request"], "nonce": "other"}
    session.save()
    refused(client, client.get(callback), "nonce")


def test_id_token_signed_by_another_key_is_refused(fc, db):
    published = json.loads(requests.get(fc + "/jwks", timeout=10).text)["keys"][0]
    impostor = jwk.JWK.generate(kty="RSA", size=2048, kid=published["kid"])
    token = jwt.JWT(
        header={"alg": "RS256", "kid": published["kid"]},
        claims={
            "iss": fc,
            "aud": CLIENT_ID,
            "sub": "x",
            "nonce": "n",
            "iat": 1_700_000_000,
            "exp": 4_000_000_000,
        },
    )
    token.make_signed_token(impostor)
    with pytest.raises(franceconnect.Refused, match="ID token"):
        franceconnect.verify_id_token(token.serialize(), "n", issuer=fc)
