"""Interoperability with pyoidc (`oic`), a relying party nobody here wrote (issue 9).

Discovery under the issuer, code flow with PKCE, ID token checked by pyoidc against the JWKS,
userinfo by POST (pyoidc's default), refresh, and silent re-authentication with prompt=none.
"""

import secrets
import time
from urllib.parse import urlsplit

import pytest
from django.test import Client as DjangoClient
from oic.oauth2.message import ErrorResponse
from oic.oic import Client
from oic.oic.message import AuthorizationResponse, OpenIDSchema, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from portail.sso import services
from tests.sso.conftest import REDIRECT_URI


@pytest.fixture
def issuer(settings, live_server):
    # The issuer must be reachable for pyoidc's discovery: the live server's, for this test.
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_ISS_ENDPOINT": live_server.url + "/o",
    }
    return live_server.url + "/o"


@pytest.fixture
def pyoidc(issuer, oidc_client, rp_secret):
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(issuer)  # fetches issuer + /.well-known/…, checks the issuer
    client.store_registration_info(
        RegistrationResponse(
            client_id=oidc_client.client_id,
            client_secret=rp_secret,
            redirect_uris=[REDIRECT_URI],
        )
    )
    client.redirect_uris = [REDIRECT_URI]
    return client


def authorization(pyoidc, browser, live_server, **extra):
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    challenge, verifier = pyoidc.add_code_challenge()
    request = pyoidc.construct_AuthorizationRequest(
        request_args={
            "response_type": "code",
            "scope": ["openid", "profile", "ent"],
            "state": state,
            "nonce": nonce,
            "redirect_uri": REDIRECT_URI,
            **challenge,
            **extra,
        }
    )
    url = request.request(pyoidc.authorization_endpoint)
    response = browser.get(url[len(live_server.url) :])
    assert response.status_code == 302, response.content[:300]
    location = response["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    parsed = pyoidc.parse_response(
        AuthorizationResponse, info=urlsplit(location).query, sformat="urlencoded"
    )
    return parsed, state, verifier


def test_pyoidc_code_flow_userinfo_by_post_and_refresh(logged_in, pyoidc, live_server, issuer):
    parsed, state, verifier = authorization(pyoidc, logged_in, live_server)
    assert isinstance(parsed, AuthorizationResponse) and parsed["state"] == state
    tokens = pyoidc.do_access_token_request(
        state=state,
        request_args={"code": parsed["code"], "code_verifier": verifier},
        authn_method="client_secret_basic",
    )
    id_token = tokens["id_token"]  # verified by pyoidc: signature, issuer, audience, nonce
    assert id_token["iss"] == issuer
    info = pyoidc.do_user_info_request(state=state)  # POST, the token in the header
    assert isinstance(info, OpenIDSchema)
    assert info["sub"] == id_token["sub"] and info["identifier"] == "jean.dupont"
    refreshed = pyoidc.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert refreshed["access_token"] != tokens["access_token"]
    assert pyoidc.do_user_info_request(state=state)["sub"] == id_token["sub"]


def test_pyoidc_silent_reauthentication(logged_in, pyoidc, live_server):
    session = logged_in.session
    session[services.AUTH_TIME_KEY] = time.time()
    session.save()
    parsed, _, _ = authorization(pyoidc, logged_in, live_server, prompt="none")
    assert isinstance(parsed, AuthorizationResponse) and parsed["code"]
    # Without a portal session: the error pyoidc understands, not a page.
    parsed, state, _ = authorization(pyoidc, DjangoClient(), live_server, prompt="none")
    assert isinstance(parsed, ErrorResponse), parsed.to_dict()
    assert parsed["error"] == "login_required" and parsed["state"] == state
