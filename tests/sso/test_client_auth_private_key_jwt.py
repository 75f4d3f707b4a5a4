"""private_key_jwt (RFC 7523 §2.2, OIDC Core §9): a client proves itself with an assertion signed
by its own key; Authlib's PrivateKeyJWT is the relying party."""

import json
import secrets
import time

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from django.core.exceptions import ValidationError
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.sso.conftest import REDIRECT_URI

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER = "https://ent.example.test/o"


@pytest.fixture
def client_key(oidc_client):
    key = RSAKey.generate_key(2048, parameters={"kid": "cle-1"})
    app = oidc_client.portail_application
    app.oidc_jwks = json.dumps({"keys": [key.as_dict(private=False)]})
    app.full_clean()
    app.save()
    return key


def assertion(client_id, key, **changes):
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER + "/token/",
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
        **changes,
    }
    return jwt.encode({"alg": "RS256", "kid": "cle-1"}, claims, key)


def token_request(live_server, client_id, signed, **data):
    return requests.post(
        live_server.url + "/o/token/",
        data={
            "grant_type": "refresh_token",
            "refresh_token": "x",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
            **data,
        },
        timeout=5,
    )


def test_authlib_private_key_jwt_code_flow(logged_in, oidc_client, client_key, live_server):
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    token_url = live_server.url + "/o/token/"
    rp = OAuth2Session(
        oidc_client.client_id,
        client_key.as_pem(private=True).decode(),
        scope="openid",
        redirect_uri=REDIRECT_URI,
        token_endpoint_auth_method=PrivateKeyJWT(ISSUER + "/token/", alg="RS256"),
    )
    verifier = secrets.token_urlsafe(48)
    url, _ = rp.create_authorization_url(
        live_server.url + "/o/authorize/",
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    location = logged_in.get(url[len(live_server.url) :])["Location"]
    token = rp.fetch_token(token_url, authorization_response=location, code_verifier=verifier)
    assert token["id_token"] and token["refresh_token"]
    assert rp.refresh_token(token_url)["access_token"]


def test_replayed_assertion_is_refused(oidc_client, client_key, live_server):
    signed = assertion(oidc_client.client_id, client_key)
    # The first use authenticates (then the bogus refresh token is invalid_grant).
    assert token_request(live_server, oidc_client.client_id, signed).status_code == 400
    assert token_request(live_server, oidc_client.client_id, signed).status_code == 401


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "https://autre.example.test/token"},
        {"exp": int(time.time()) - 600},
        {"exp": int(time.time()) + 7200},  # longer-lived than the portal accepts
        {"sub": "quelqu-un-d-autre"},
    ],
)
def test_assertion_with_wrong_claims_is_refused(oidc_client, client_key, live_server, changes):
    signed = assertion(oidc_client.client_id, client_key, **changes)
    assert token_request(live_server, oidc_client.client_id, signed).status_code == 401


def test_assertion_signed_by_another_key_is_refused(oidc_client, client_key, live_server):
    other = RSAKey.generate_key(2048, parameters={"kid": "cle-1"})
    signed = assertion(oidc_client.client_id, other)
    assert token_request(live_server, oidc_client.client_id, signed).status_code == 401


def test_client_without_registered_keys_cannot_use_assertions(oidc_client, live_server):
    key = RSAKey.generate_key(2048, parameters={"kid": "cle-1"})
    signed = assertion(oidc_client.client_id, key)
    assert token_request(live_server, oidc_client.client_id, signed).status_code == 401


def test_discovery_advertises_private_key_jwt(client, db):
    config = client.get("/o/.well-known/openid-configuration").json()
    assert config["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ]
    assert "RS256" in config["token_endpoint_auth_signing_alg_values_supported"]


def test_a_private_key_is_refused_in_the_registered_jwks(oidc_client):
    key = RSAKey.generate_key(2048)
    app = oidc_client.portail_application
    app.oidc_jwks = json.dumps({"keys": [key.as_dict(private=True)]})
    with pytest.raises(ValidationError, match="que des clés publiques"):
        app.full_clean()
    app.oidc_jwks = "pas du json"
    with pytest.raises(ValidationError, match="JWKS invalide"):
        app.full_clean()
