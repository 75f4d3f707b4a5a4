"""The OpenID Connect provider, used by Authlib's client (a relying party nobody here wrote)."""

import secrets
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from oauth2_provider.models import AccessToken, Grant, RefreshToken
from oauth2_provider.models import Application as Client

from portail.typography import normalised
from tests.conftest import STRONG_PASSWORD
from tests.sso.conftest import REDIRECT_URI

ISSUER = "https://ent.example.test/o"


def authorize(browser, rp, live_server, **extra):
    """The browser's part: the RP's authorization URL, answered by the portal."""
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        live_server.url + "/o/authorize/", code_verifier=verifier, nonce=nonce, **extra
    )
    response = browser.get(url[len(live_server.url) :])
    return response, verifier, nonce


def code_login(browser, rp, live_server):
    response, verifier, nonce = authorize(browser, rp, live_server)
    assert response.status_code == 302, response.content[:500]
    location = response["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    token = rp.fetch_token(
        live_server.url + "/o/token/", authorization_response=location, code_verifier=verifier
    )
    return token, nonce, location


def verify_id_token(id_token, live_server, client_id, nonce, access_token=None):
    jwks = requests.get(live_server.url + "/o/.well-known/jwks.json", timeout=5).json()
    decoded = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256"
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={"iss": {"values": [ISSUER]}},
        params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    claims.validate()
    return claims


def test_discovery_announces_code_flow_s256_and_rs256(client, db):
    for path in ("/.well-known/openid-configuration", "/o/.well-known/openid-configuration"):
        config = client.get(path, follow=True).json()
        assert config["issuer"] == ISSUER
        assert config["response_types_supported"] == ["code"]
        assert config["code_challenge_methods_supported"] == ["S256"]
        assert "RS256" in config["id_token_signing_alg_values_supported"]
        assert config["end_session_endpoint"].endswith("/o/logout/")
        assert {"sub", "identifier", "entProfile", "uai", "classes"} <= set(
            config["claims_supported"]
        )


def test_code_flow_with_pkce_signed_id_token_userinfo_and_refresh(
    logged_in, rp, oidc_client, live_server
):
    token, nonce, location = code_login(logged_in, rp, live_server)
    # RFC 9207: the authorization response names the issuer (mix-up defence).
    assert parse_qs(urlsplit(location).query)["iss"] == [ISSUER]
    # Tokens are stored hashed: the database holds no usable access or refresh token.
    assert not AccessToken.objects.filter(token=token["access_token"]).exists()
    assert not RefreshToken.objects.filter(token=token["refresh_token"]).exists()
    claims = verify_id_token(
        token["id_token"], live_server, oidc_client.client_id, nonce, token["access_token"]
    )
    assert claims["identifier"] == "jean.dupont"
    assert claims["entProfile"] == "parent"

    info = rp.get(live_server.url + "/o/userinfo/").json()
    assert info["sub"] == claims["sub"]
    assert info["identifier"] == "jean.dupont"
    assert info["displayName"] == "Jean Dupont"
    assert info["uai"] == ["0751234A"]
    assert info["email"] == "jean.dupont@example.org"
    # The standard names follow the release list: « displayName » is released, not the others.
    assert info["name"] == "Jean Dupont"
    assert "given_name" not in info and "family_name" not in info
    assert "classes" not in info  # not released to this client

    old_refresh = token["refresh_token"]
    refreshed = rp.refresh_token(live_server.url + "/o/token/")
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != old_refresh
    assert rp.get(live_server.url + "/o/userinfo/").json()["identifier"] == "jean.dupont"
    # A rotated refresh token is dead (and its replay revokes the family, RFC 9700 §4.14.2).
    replay = requests.post(
        live_server.url + "/o/token/",
        data={"grant_type": "refresh_token", "refresh_token": old_refresh},
        auth=(oidc_client.client_id, rp.client_secret),
        timeout=5,
    )
    assert replay.status_code == 400


def test_anonymous_authorization_goes_through_the_portal_login(
    client, rp, active_user, live_server
):
    response, verifier, _ = authorize(client, rp, live_server)
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/login?next=")
    response = client.post(
        response["Location"], {"identifier": "jean.dupont", "password": STRONG_PASSWORD}
    )
    response = client.get(response["Location"])
    assert response["Location"].startswith(REDIRECT_URI + "?code=")


def test_ent_claims_follow_the_release_list(logged_in, rp, oidc_client, live_server):
    app = oidc_client.portail_application
    app.released_attributes = ["identifier"]
    app.save()
    rp.scope = "openid profile ent"
    code_login(logged_in, rp, live_server)
    info = rp.get(live_server.url + "/o/userinfo/").json()
    assert info["identifier"] == "jean.dupont"
    assert "email" not in info and "uai" not in info


def test_code_cannot_be_used_twice(logged_in, rp, live_server):
    response, verifier, _ = authorize(logged_in, rp, live_server)
    location = response["Location"]
    rp.fetch_token(
        live_server.url + "/o/token/", authorization_response=location, code_verifier=verifier
    )
    with pytest.raises(Exception, match="invalid_grant"):
        rp.fetch_token(
            live_server.url + "/o/token/", authorization_response=location, code_verifier=verifier
        )


def test_pkce_verifier_mismatch_is_refused(logged_in, rp, live_server):
    response, _, _ = authorize(logged_in, rp, live_server)
    with pytest.raises(Exception, match="invalid_grant"):
        rp.fetch_token(
            live_server.url + "/o/token/",
            authorization_response=response["Location"],
            code_verifier=secrets.token_urlsafe(48),
        )


def test_plain_pkce_is_refused(logged_in, oidc_client):
    verifier = secrets.token_urlsafe(48)
    response = logged_in.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": oidc_client.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "code_challenge": verifier,
            "code_challenge_method": "plain",
        },
    )
    assert response["Location"].startswith(REDIRECT_URI + "?error=invalid_request")
    assert "plain" in response["Location"]
    assert not Grant.objects.exists()


def test_missing_pkce_is_refused(logged_in, oidc_client):
    response = logged_in.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": oidc_client.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
        },
    )
    assert response["Location"].startswith(REDIRECT_URI + "?error=invalid_request")
    assert not Grant.objects.exists()


def test_redirect_uri_mismatch_is_refused_without_redirect(logged_in, oidc_client):
    response = logged_in.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": oidc_client.client_id,
            "redirect_uri": REDIRECT_URI + "/../evil",
            "scope": "openid",
            "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)),
            "code_challenge_method": "S256",
        },
    )
    # RFC 6749 §4.1.2.1: never redirect to an unregistered URI; the user reads why, in French.
    assert response.status_code == 400
    assert "adresse de retour non enregistrée" in unescape(response.content.decode())
    assert not Grant.objects.exists()


@pytest.mark.parametrize("response_type", ["token", "id_token", "id_token token", "code id_token"])
def test_implicit_and_hybrid_flows_are_refused(logged_in, oidc_client, response_type):
    response = logged_in.get(
        "/o/authorize/",
        {
            "response_type": response_type,
            "client_id": oidc_client.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "nonce": "n",
            "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)),
            "code_challenge_method": "S256",
        },
    )
    location = response.get("Location", "")
    assert "access_token=" not in location and "id_token=" not in location
    assert "error=" in location or response.status_code >= 400
    assert not AccessToken.objects.exists()


def test_password_grant_is_refused(oidc_client, rp_secret, active_user, client):
    response = client.post(
        "/o/token/",
        {"grant_type": "password", "username": "jean.dupont", "password": STRONG_PASSWORD},
        HTTP_AUTHORIZATION=requests.auth._basic_auth_str(oidc_client.client_id, rp_secret),
    )
    assert response.status_code in (400, 401)
    assert not AccessToken.objects.exists()


def test_rp_initiated_logout_ends_the_grant_and_asks_before_ending_the_portal_session(
    logged_in, rp, oidc_client, live_server
):
    token, _, _ = code_login(logged_in, rp, live_server)
    params = {
        "id_token_hint": token["id_token"],
        "post_logout_redirect_uri": "https://rp.example.test/bye",
        "client_id": oidc_client.client_id,
        "state": "s-1",
    }
    response = logged_in.get("/o/logout/", params)
    # The application's grant is over at once; the portal session only if the user says so.
    assert rp.get(live_server.url + "/o/userinfo/").status_code == 401
    assert response.status_code == 200
    page = normalised(unescape(response.content.decode()))
    assert "Se déconnecter de l'ENT" in page and "Rester connecté" in page
    assert "_auth_user_id" in logged_in.session
    response = logged_in.post("/o/logout/", {**params, "allow": "on"})
    assert response.status_code == 302
    assert response["Location"] == "https://rp.example.test/bye?state=s-1"
    assert "_auth_user_id" not in logged_in.session


@pytest.mark.parametrize("extra", [{"prompt": "login"}, {"max_age": "0"}])
def test_prompt_login_asks_for_the_password_again(logged_in, rp, live_server, extra):
    response, _, _ = authorize(logged_in, rp, live_server, **extra)
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/login?next=")
    # Going straight back to the authorization URL, password not typed: still no code.
    next_url = parse_qs(urlsplit(response["Location"]).query)["next"][0]
    again = logged_in.get(next_url)
    assert again.status_code == 302 and "code=" not in again["Location"]
    assert again["Location"].startswith("/auth/login?next=")
    assert not Grant.objects.exists()
    response = logged_in.post(
        response["Location"], {"identifier": "jean.dupont", "password": STRONG_PASSWORD}
    )
    assert logged_in.get(response["Location"])["Location"].startswith(REDIRECT_URI + "?code=")
    # The typed password served this code only: the next prompt=login asks again.
    response, _, _ = authorize(logged_in, rp, live_server, **extra)
    assert response["Location"].startswith("/auth/login?next=")


def test_client_may_ask_only_the_scopes_its_release_list_allows(
    logged_in, rp, oidc_client, live_server
):
    app = oidc_client.portail_application
    app.released_attributes = ["identifier", "displayName"]  # no email
    app.save()
    response, _, _ = authorize(logged_in, rp, live_server)  # asks "openid profile email ent"
    assert "error=invalid_scope" in response["Location"]
    rp.scope = "openid profile ent"
    response, _, _ = authorize(logged_in, rp, live_server)
    assert "code=" in response["Location"]


def test_authorization_is_audited(logged_in, rp, live_server, active_user):
    from portail.audit.models import Event

    code_login(logged_in, rp, live_server)
    assert Event.objects.filter(tag="sso.oidc.authorize", target=active_user).exists()


def test_access_token_in_the_query_string_is_refused(logged_in, rp, live_server):
    token, _, _ = code_login(logged_in, rp, live_server)
    # RFC 9700 §4.3.2: bearer tokens travel in the Authorization header only.
    response = requests.get(
        live_server.url + "/o/userinfo/", params={"access_token": token["access_token"]}, timeout=5
    )
    assert response.status_code == 401


@pytest.fixture
def pupil_client(client, pending_pupil):
    user, _ = pending_pupil
    user.set_password(STRONG_PASSWORD)
    user.state = "active"
    user.save()
    client.force_login(user)
    return client


def consent_form(oidc_client, **extra):
    verifier = secrets.token_urlsafe(48)
    return {
        "client_id": oidc_client.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid profile",
        "state": "s" * 16,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
        "allow": "Authorize",
        **extra,
    }


def test_pupil_posting_the_consent_form_of_a_teachers_app_gets_no_code(pupil_client, oidc_client):
    app = oidc_client.portail_application
    app.profiles = ["enseignant"]
    app.save()
    response = pupil_client.post("/o/authorize/", consent_form(oidc_client))
    assert response.status_code == 403
    assert "code=" not in response.get("Location", "")
    assert "ne donne pas accès à cette application" in response.content.decode()
    assert not Grant.objects.exists()


def test_consent_form_post_is_remembered_audited_and_leaves_through_the_redirect_page(
    pupil_client, oidc_client
):
    from portail.audit.models import Event

    oidc_client.skip_authorization = False
    oidc_client.save()
    response = pupil_client.post("/o/authorize/", consent_form(oidc_client))
    assert response.status_code == 302 and "code=" in response["Location"]
    assert Event.objects.filter(tag="sso.oidc.authorize").exists()
    assert pupil_client.session["sso_oidc_clients"] == [oidc_client.client_id]


def test_clients_registered_in_the_admin_skip_the_consent_screen(client, db):
    from portail.accounts.models import User
    from tests.conftest import enter_admin

    admin = User.objects.create_superuser("admin.region", "un mot de passe solide 42")
    enter_admin(client, admin)
    response = client.post(
        "/admin/oauth2_provider/application/add/",
        {
            "client_id": "moodle-client",
            "client_secret": secrets.token_urlsafe(32),
            "client_type": Client.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Client.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": REDIRECT_URI,
            "post_logout_redirect_uris": "",
            "allowed_origins": "",
            "name": "Moodle",
            "algorithm": Client.RS256_ALGORITHM,
            "hash_client_secret": "on",
            "registration_source": "manual",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Client.objects.get(client_id="moodle-client").skip_authorization is True


def test_discovery_advertises_only_rs256_and_the_supported_grants(client, db):
    config = client.get("/.well-known/openid-configuration", follow=True).json()
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert config["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]


def test_auth_time_is_this_sessions_login_not_the_accounts_last_login(
    client, rp, oidc_client, active_user, live_server
):
    import time

    from django.utils import timezone

    client.post("/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD})
    typed = client.session["sso_auth_time"]
    # Another browser logs in later: last_login moves, this session's login does not.
    active_user.refresh_from_db()
    active_user.last_login = timezone.now() + timezone.timedelta(hours=1)
    active_user.save(update_fields=["last_login"])
    token, nonce, _ = code_login(client, rp, live_server)
    claims = verify_id_token(
        token["id_token"], live_server, oidc_client.client_id, nonce, token["access_token"]
    )
    assert claims["auth_time"] == int(typed)
    assert claims["auth_time"] <= time.time()
    # OIDC Core §12.2: a refreshed ID token keeps the original authentication time.
    refreshed = rp.refresh_token(live_server.url + "/o/token/")
    again = jwt.decode(
        refreshed["id_token"],
        KeySet.import_key_set(
            requests.get(live_server.url + "/o/.well-known/jwks.json", timeout=5).json()
        ),
        algorithms=["RS256"],
    )
    assert again.claims["auth_time"] == int(typed)
    from portail.sso.services import purge_expired_tickets

    purge_expired_tickets()  # the family still has its refresh token: its auth_time stays
    from portail.sso.models import AuthorizationTime

    assert AuthorizationTime.objects.filter(grant=None).count() == 1
