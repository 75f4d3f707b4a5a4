"""One portal session for every application: the issue's "done when", with real clients."""

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from cas import CASClient
from joserfc import jwt
from joserfc.jwk import KeySet
from oauth2_provider.models import Application as Client

from portail.sso.models import Application
from portail.sso.oidc_logout import BACKCHANNEL_EVENT

REDIRECT_URI = "https://moodle.example.test/auth/oidc/"


@pytest.fixture
def pupil(pending_pupil, client):
    """An activated pupil (the activation flow itself is tested by the accounts suite)."""
    from tests.conftest import STRONG_PASSWORD

    user, _ = pending_pupil
    user.set_password(STRONG_PASSWORD)
    user.state = "active"
    user.email = "elodie@example.org"
    user.save()
    return user, STRONG_PASSWORD


@pytest.fixture
def tiles(recorder):
    secret = secrets.token_urlsafe(32)
    oidc = Client.objects.create(
        name="Moodle",
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
        client_secret=secret,
        algorithm=Client.RS256_ALGORITHM,
        skip_authorization=True,
    )
    cas = Application.objects.create(
        name="Vie scolaire",
        short_label="VS",
        url=recorder.url + "/vie-scolaire/",
        kind=Application.Kind.CAS,
        cas_service_patterns=recorder.url + "/vie-scolaire/",
    )
    moodle = Application.objects.create(
        name="Moodle",
        short_label="MO",
        url="https://moodle.example.test/",
        kind=Application.Kind.OIDC,
        oidc_client=oidc,
        oidc_backchannel_logout_uri=recorder.url + "/moodle/backchannel-logout",
    )
    return cas, moodle, oidc, secret


def test_pupil_logs_in_once_reaches_two_applications_and_logs_out_of_both(
    client, pupil, tiles, recorder, live_server
):
    user, password = pupil
    cas_app, moodle, oidc, secret = tiles

    # Login once at the portal; the home page shows both tiles.
    response = client.post("/auth/login", {"identifier": " Élodie.DUPRÉ ", "password": password})
    assert response["Location"] == "/"
    home = client.get("/").content.decode()
    assert cas_app.url in home and moodle.url in home

    # Tile 1, CAS: the application sends the browser to /cas/login; no password asked.
    service = recorder.url + "/vie-scolaire/login"
    cas = CASClient(version=3, service_url=service, server_url=live_server.url + "/cas/")
    response = client.get(cas.get_login_url()[len(live_server.url) :])
    ticket = parse_qs(urlsplit(response["Location"]).query)["ticket"][0]
    identifier, attributes, _ = cas.verify_ticket(ticket)
    assert identifier == "elodie.dupre" and attributes["entProfile"] == "eleve"

    # Tile 2, OpenID Connect: code + PKCE, no password asked.
    rp = _oidc_login(client, tiles, live_server)
    token = rp.token
    assert rp.get(live_server.url + "/o/userinfo/").json()["identifier"] == "elodie.dupre"

    # Logout of the portal: both applications are told, the OIDC tokens die.
    client.post("/auth/logout")
    posts = {r["path"]: r["form"] for r in recorder.requests if r["method"] == "POST"}
    assert CASClient(version=3).verify_logout_request(
        posts["/vie-scolaire/login"]["logoutRequest"][0], ticket
    )
    jwks = requests.get(live_server.url + "/o/.well-known/jwks.json", timeout=5).json()
    logout = jwt.decode(
        posts["/moodle/backchannel-logout"]["logout_token"][0],
        KeySet.import_key_set(jwks),
        algorithms=["RS256"],
    )
    assert logout.header["typ"] == "logout+jwt"
    assert logout.claims["aud"] == oidc.client_id
    assert logout.claims["iss"] == "https://ent.example.test/o"
    # The application's pairwise sub (its ID token's), and the portal session's sid.
    id_claims = jwt.decode(token["id_token"], KeySet.import_key_set(jwks)).claims
    assert logout.claims["sub"] == id_claims["sub"] != str(user.pk)
    assert logout.claims["sid"] == id_claims["sid"]
    assert BACKCHANNEL_EVENT in logout.claims["events"]
    assert "nonce" not in logout.claims
    assert rp.get(live_server.url + "/o/userinfo/").status_code == 401
    refresh = requests.post(
        live_server.url + "/o/token/",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=(oidc.client_id, secret),
        timeout=5,
    )
    assert refresh.status_code == 400

    # And the portal session is over: the next CAS login asks for the password.
    assert client.get("/cas/login", {"service": service})["Location"].startswith("/auth/login")


def test_discovery_announces_back_channel_logout(client, db):
    config = client.get("/.well-known/openid-configuration", follow=True).json()
    assert config["backchannel_logout_supported"] is True


def _oidc_login(client, tiles, live_server):
    _, _, oidc, secret = tiles
    rp = OAuth2Session(
        oidc.client_id,
        secret,
        scope="openid ent",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, _ = rp.create_authorization_url(
        live_server.url + "/o/authorize/", code_verifier=verifier, nonce="n"
    )
    response = client.get(url[len(live_server.url) :])
    rp.fetch_token(
        live_server.url + "/o/token/",
        authorization_response=response["Location"],
        code_verifier=verifier,
    )
    assert rp.get(live_server.url + "/o/userinfo/").status_code == 200
    return rp


def test_blocking_the_account_kills_its_oidc_tokens(client, active_user, tiles, live_server):
    client.force_login(active_user)
    rp = _oidc_login(client, tiles, live_server)
    active_user.state = "blocked"
    active_user.end_all_sessions()
    active_user.save()
    assert rp.get(live_server.url + "/o/userinfo/").status_code == 401


def test_password_change_kills_its_oidc_tokens(client, active_user, tiles, live_server):
    client.force_login(active_user)
    rp = _oidc_login(client, tiles, live_server)
    # What accounts.services.set_new_password saves (reset, account page).
    active_user.set_password("une toute nouvelle phrase secrète")
    active_user.end_all_sessions()
    active_user.save(update_fields=["password", "session_stamp"])
    assert rp.get(live_server.url + "/o/userinfo/").status_code == 401


def test_unrelated_user_save_keeps_the_tokens(client, active_user, tiles, live_server):
    client.force_login(active_user)
    rp = _oidc_login(client, tiles, live_server)
    active_user.phone = "+33612345678"
    active_user.save()
    assert rp.get(live_server.url + "/o/userinfo/").status_code == 200


@pytest.mark.parametrize("how", ["blocked", "password_reset"])
def test_blocking_or_resetting_the_password_logs_the_applications_out(
    client, pupil, tiles, recorder, live_server, django_capture_on_commit_callbacks, how
):
    user, password = pupil
    cas_app, moodle, oidc, secret = tiles
    client.post("/auth/login", {"identifier": "elodie.dupre", "password": password})
    service = recorder.url + "/vie-scolaire/login"
    cas = CASClient(version=3, service_url=service, server_url=live_server.url + "/cas/")
    response = client.get(cas.get_login_url()[len(live_server.url) :])
    ticket = parse_qs(urlsplit(response["Location"]).query)["ticket"][0]
    assert cas.verify_ticket(ticket)[0] == "elodie.dupre"
    rp = OAuth2Session(
        oidc.client_id,
        secret,
        scope="openid",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, _ = rp.create_authorization_url(
        live_server.url + "/o/authorize/", code_verifier=verifier, nonce="n-2"
    )
    token = rp.fetch_token(
        live_server.url + "/o/token/",
        authorization_response=client.get(url[len(live_server.url) :])["Location"],
        code_verifier=verifier,
    )

    # No logout: the référent blocks the account, or its password is reset elsewhere.
    with django_capture_on_commit_callbacks(execute=True):
        if how == "blocked":
            user.state = "blocked"
        else:
            user.end_all_sessions()
        user.save()

    posts = {r["path"]: r["form"] for r in recorder.requests if r["method"] == "POST"}
    assert CASClient(version=3).verify_logout_request(
        posts["/vie-scolaire/login"]["logoutRequest"][0], ticket
    )
    jwks = requests.get(live_server.url + "/o/.well-known/jwks.json", timeout=5).json()
    logout = jwt.decode(
        posts["/moodle/backchannel-logout"]["logout_token"][0],
        KeySet.import_key_set(jwks),
        algorithms=["RS256"],
    )
    id_claims = jwt.decode(token["id_token"], KeySet.import_key_set(jwks)).claims
    # Every session of the account ended: sub (the application's pairwise one), no sid.
    assert logout.claims["aud"] == oidc.client_id and logout.claims["sub"] == id_claims["sub"]
    assert "sid" not in logout.claims
    assert rp.get(live_server.url + "/o/userinfo/").status_code == 401
