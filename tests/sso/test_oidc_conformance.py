"""OpenID Connect by the book: silent authentication, error responses, POST where allowed.

Each test here failed on the code before issue 9 (HTTP 500, 403 CSRF page, missing "iss", …).
"""

import secrets
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.test import Client as DjangoClient
from oauth2_provider.models import Application as Client
from oauth2_provider.models import Grant

from portail.sso import services
from tests.sso.conftest import REDIRECT_URI
from tests.sso.test_oidc import ISSUER, code_login, verify_id_token


def request_params(oidc_client, **extra):
    params = {
        "response_type": "code",
        "client_id": oidc_client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": "etat-" + secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def answer(response):
    """The parameters of a redirect back to the client (asserting it is one)."""
    assert response.status_code == 302, response.content[:300]
    location = response["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def recent_login(client):
    session = client.session
    session[services.AUTH_TIME_KEY] = time.time()
    session.save()


# --- prompt=none (OIDC Core §3.1.2.1, §3.1.2.6) ---


def test_prompt_none_with_a_session_returns_a_code_silently(logged_in, oidc_client):
    recent_login(logged_in)
    params = request_params(oidc_client, prompt="none")
    got = answer(logged_in.get("/o/authorize/", params))
    assert got["code"] and got["state"] == params["state"] and got["iss"] == ISSUER


def test_prompt_none_without_a_session_is_login_required(client, oidc_client):
    params = request_params(oidc_client, prompt="none")
    got = answer(client.get("/o/authorize/", params))
    assert got == {"error": "login_required", "state": params["state"], "iss": ISSUER}
    assert not Grant.objects.exists()


def test_prompt_none_past_max_age_is_login_required_not_the_login_page(logged_in, oidc_client):
    session = logged_in.session
    session[services.AUTH_TIME_KEY] = time.time() - 600
    session.save()
    got = answer(
        logged_in.get("/o/authorize/", request_params(oidc_client, prompt="none", max_age="60"))
    )
    assert got["error"] == "login_required" and got["iss"] == ISSUER
    assert not Grant.objects.exists()


def test_prompt_none_within_max_age_returns_a_code(logged_in, oidc_client):
    recent_login(logged_in)
    got = answer(
        logged_in.get("/o/authorize/", request_params(oidc_client, prompt="none", max_age="600"))
    )
    assert "code" in got


def test_prompt_none_when_consent_is_needed_is_consent_required(logged_in, oidc_client):
    oidc_client.skip_authorization = False
    oidc_client.save()
    recent_login(logged_in)
    got = answer(logged_in.get("/o/authorize/", request_params(oidc_client, prompt="none")))
    assert got["error"] == "consent_required" and got["iss"] == ISSUER
    assert not Grant.objects.exists()


@pytest.mark.parametrize("prompt", ["none login", "login none", "none consent"])
def test_prompt_none_with_another_value_is_invalid_request(logged_in, client, oidc_client, prompt):
    recent_login(logged_in)
    for browser in (logged_in, client):
        got = answer(browser.get("/o/authorize/", request_params(oidc_client, prompt=prompt)))
        assert got["error"] == "invalid_request" and got["iss"] == ISSUER
    assert not Grant.objects.exists()


def test_prompt_none_with_an_unregistered_redirect_is_never_redirected(client, oidc_client):
    params = request_params(oidc_client, prompt="none", redirect_uri="https://evil.example.test/")
    response = client.get("/o/authorize/", params)
    assert response.status_code == 400
    assert "evil" not in response.get("Location", "")


# --- iss and access_denied (RFC 9207 §2, RFC 6749 §4.1.2.1) ---


def test_error_redirects_carry_the_issuer(logged_in, oidc_client):
    got = answer(logged_in.get("/o/authorize/", request_params(oidc_client, code_challenge=None)))
    assert got["error"] == "invalid_request" and got["iss"] == ISSUER


def test_user_outside_the_profile_goes_back_with_access_denied(logged_in, oidc_client):
    app = oidc_client.portail_application
    app.profiles = ["eleve"]
    app.save()
    params = request_params(oidc_client)
    got = answer(logged_in.get("/o/authorize/", params))
    assert got["error"] == "access_denied"
    assert got["state"] == params["state"] and got["iss"] == ISSUER
    assert not Grant.objects.exists()


def test_refused_user_with_an_unregistered_redirect_reads_a_french_page(logged_in, oidc_client):
    app = oidc_client.portail_application
    app.profiles = ["eleve"]
    app.save()
    params = request_params(oidc_client, redirect_uri="https://evil.example.test/cb")
    response = logged_in.get("/o/authorize/", params)
    assert response.status_code == 403
    assert "ne donne pas accès à cette application" in unescape(response.content.decode())


# --- Unsupported request parameters (OIDC Core §6.1, §6.2; OAuth 2.0 Form Post) ---


@pytest.mark.parametrize(
    "extra, error",
    [
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://rp.example.test/req.jwt"}, "request_uri_not_supported"),
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ],
)
def test_unsupported_request_parameters_are_refused(logged_in, oidc_client, extra, error):
    got = answer(logged_in.get("/o/authorize/", request_params(oidc_client, **extra)))
    assert got["error"] == error and got["iss"] == ISSUER
    assert not Grant.objects.exists()


# --- POST to the authorization endpoint (OIDC Core §3.1.2.1), CSRF kept for the consent form ---


def test_posted_authorization_request_is_answered_like_its_get(db, active_user, oidc_client):
    browser = DjangoClient(enforce_csrf_checks=True)
    browser.force_login(active_user)
    recent_login(browser)
    params = request_params(oidc_client)
    response = browser.post("/o/authorize/", params)
    assert response.status_code == 303
    assert response["Location"].startswith("/o/authorize/?")
    assert parse_qs(urlsplit(response["Location"]).query) == {k: [v] for k, v in params.items()}
    got = answer(browser.get(response["Location"]))
    assert got["code"] and got["state"] == params["state"]


def test_consent_form_without_its_csrf_token_is_still_refused(db, active_user, oidc_client):
    oidc_client.skip_authorization = False
    oidc_client.save()
    browser = DjangoClient(enforce_csrf_checks=True)
    browser.force_login(active_user)
    response = browser.post("/o/authorize/", {**request_params(oidc_client), "allow": "Autoriser"})
    assert response.status_code == 403
    assert "code=" not in response.get("Location", "")
    assert not Grant.objects.exists()


# --- userinfo and logout by POST (OIDC Core §5.3.1, RFC 6750 §2.2, RP-Initiated Logout §2) ---


def test_userinfo_answers_a_post_with_the_token_in_the_header_or_the_body(
    logged_in, rp, live_server
):
    token, _, _ = code_login(logged_in, rp, live_server)
    url = live_server.url + "/o/userinfo/"
    by_header = requests.post(
        url, headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=5
    )
    assert by_header.status_code == 200, by_header.text[:300]
    assert by_header.json()["identifier"] == "jean.dupont"
    by_body = requests.post(url, data={"access_token": token["access_token"]}, timeout=5)
    assert by_body.status_code == 200, by_body.text[:300]
    assert by_body.json()["sub"] == by_header.json()["sub"]
    # Still refused in the query string (RFC 9700 §4.3.2).
    assert (
        requests.post(url + "?access_token=" + token["access_token"], timeout=5).status_code == 401
    )


def test_rp_initiated_logout_may_be_posted(logged_in, rp, oidc_client, live_server):
    token, _, _ = code_login(logged_in, rp, live_server)
    browser = DjangoClient(enforce_csrf_checks=True)
    browser.cookies = logged_in.cookies
    params = {
        "id_token_hint": token["id_token"],
        "post_logout_redirect_uri": "https://rp.example.test/bye",
        "client_id": oidc_client.client_id,
        "state": "au-revoir",
    }
    response = browser.post("/o/logout/", params)
    assert response.status_code == 303
    response = browser.get(response["Location"])
    # The posted request is the GET one: the grant ends, the user is asked about the portal.
    assert response.status_code == 200
    assert "Rester connecté" in response.content.decode()
    assert rp.get(live_server.url + "/o/userinfo/").status_code == 401
    assert "_auth_user_id" in browser.session


def test_logout_confirmation_form_keeps_its_csrf_check(logged_in, oidc_client):
    browser = DjangoClient(enforce_csrf_checks=True)
    browser.cookies = logged_in.cookies
    response = browser.post("/o/logout/", {"allow": "Se déconnecter"})
    assert response.status_code == 403
    assert "_auth_user_id" in browser.session


# --- Discovery and JWKS (OIDC Discovery §4, RFC 8414 §2) ---


def test_both_discovery_urls_lead_to_the_one_issuers_document(client, db):
    root = client.get("/.well-known/openid-configuration")
    assert root.status_code == 302
    assert root["Location"] == "/o/.well-known/openid-configuration"
    config = client.get(root["Location"]).json()
    # §4.3: the issuer is the prefix of the URL the document was fetched from.
    assert config["issuer"] == ISSUER
    assert config["issuer"] + "/.well-known/openid-configuration" == (
        "https://ent.example.test/o/.well-known/openid-configuration"
    )


def test_discovery_lists_public_clients_revocation_and_introspection(client, db):
    config = client.get("/o/.well-known/openid-configuration").json()
    assert "none" in config["token_endpoint_auth_methods_supported"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        config["token_endpoint_auth_methods_supported"]
    )
    assert config["revocation_endpoint"] == "https://ent.example.test/o/revoke_token/"
    assert config["introspection_endpoint"] == "https://ent.example.test/o/introspect/"
    assert config["response_modes_supported"] == ["query"]
    assert config["request_parameter_supported"] is False
    assert config["request_uri_parameter_supported"] is False


def test_id_tokens_carry_the_discovered_issuer(logged_in, rp, oidc_client, live_server):
    token, nonce, _ = code_login(logged_in, rp, live_server)
    config = requests.get(live_server.url + "/.well-known/openid-configuration", timeout=5).json()
    claims = verify_id_token(token["id_token"], live_server, oidc_client.client_id, nonce)
    assert claims["iss"] == config["issuer"] == ISSUER


def test_jwks_is_publicly_cacheable_without_no_store(client, db):
    response = client.get("/o/.well-known/jwks.json")
    cache_control = [part.strip() for part in response["Cache-Control"].split(",")]
    assert "public" in cache_control
    assert any(part.startswith("max-age=") and int(part[8:]) > 0 for part in cache_control)
    assert not {"no-store", "no-cache", "private", "must-revalidate"} & set(cache_control)
    assert response.json()["keys"]
    # Everything else stays out of shared caches.
    assert "no-store" in client.get("/o/.well-known/openid-configuration")["Cache-Control"]


# --- id_token_hint (OIDC Core §3.1.2.1) ---


def id_token_for(user_pk, client_id, *, key_pem=None, age=0):
    """An ID token as the portal issues it: the client's pairwise sub of that account."""
    from django.conf import settings
    from jwcrypto import jwk, jwt

    from portail.sso.privacy import subject_for_client

    subject = subject_for_client(user_pk, Client.objects.get(client_id=client_id))

    pem = key_pem or settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]
    key = jwk.JWK.from_pem(pem.encode())
    now = int(time.time()) - age
    token = jwt.JWT(
        header={"alg": "RS256", "kid": key.thumbprint()},
        claims={"iss": ISSUER, "sub": str(subject), "aud": client_id, "iat": now, "exp": now + 300},
    )
    token.make_signed_token(key)
    return token.serialize()


def test_id_token_hint_of_the_session_user_even_expired_gives_a_code(
    logged_in, active_user, oidc_client
):
    recent_login(logged_in)
    hint = id_token_for(active_user.pk, oidc_client.client_id, age=3600)
    got = answer(
        logged_in.get(
            "/o/authorize/", request_params(oidc_client, prompt="none", id_token_hint=hint)
        )
    )
    assert "code" in got


def test_id_token_hint_of_another_user_is_login_required(logged_in, active_user, oidc_client):
    recent_login(logged_in)
    hint = id_token_for(active_user.pk + 1000, oidc_client.client_id)
    got = answer(
        logged_in.get(
            "/o/authorize/", request_params(oidc_client, prompt="none", id_token_hint=hint)
        )
    )
    assert got["error"] == "login_required" and got["iss"] == ISSUER
    assert not Grant.objects.exists()


def test_id_token_hint_not_signed_by_the_portal_is_login_required(
    logged_in, active_user, oidc_client
):
    from jwcrypto import jwk

    recent_login(logged_in)
    forged_key = jwk.JWK.generate(kty="RSA", size=2048).export_to_pem(True, None).decode()
    hint = id_token_for(active_user.pk, oidc_client.client_id, key_pem=forged_key)
    got = answer(
        logged_in.get(
            "/o/authorize/", request_params(oidc_client, prompt="none", id_token_hint=hint)
        )
    )
    assert got["error"] == "login_required"
    assert not Grant.objects.exists()
