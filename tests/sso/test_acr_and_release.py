"""Issue 9 leftovers: acr_values enforced (OIDC Core §3.1.2.1, §5.5.1.1), and the standard name
claims under the administrators' release list, as the ENT claims and the CAS attributes are."""

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client as HttpClient
from oauth2_provider.models import Grant

from portail.sso.privacy import ACR_PASSWORD, ACR_SECOND_FACTOR, SECOND_FACTOR_SESSION_KEY
from tests.sso.conftest import CAS_SERVICE, REDIRECT_URI, pkce_authorize

pytestmark = pytest.mark.django_db


def authorize(browser, client, scope="openid profile email ent", **extra):
    response, verifier = pkce_authorize(browser, client, scope=scope, state="st4te", **extra)
    assert response.status_code == 302, response.content[:300]
    return parse_qs(urlsplit(response["Location"]).query), verifier


def tokens(client, secret, code, verifier):
    basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    answer = HttpClient(HTTP_AUTHORIZATION=f"Basic {basic}").post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
    )
    assert answer.status_code == 200, answer.content
    return answer.json()


def id_token_claims(id_token):
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_second_factor_level_without_the_second_factor_is_access_denied(logged_in, oidc_client):
    query, _ = authorize(logged_in, oidc_client, acr_values=ACR_SECOND_FACTOR)
    assert query["error"] == ["access_denied"]
    assert ACR_SECOND_FACTOR in query["error_description"][0]
    assert query["state"] == ["st4te"] and "iss" in query
    assert not Grant.objects.exists()


def test_second_factor_level_is_met_by_a_session_that_passed_it(
    logged_in, oidc_client, rp_secret, active_user
):
    session = logged_in.session
    session[SECOND_FACTOR_SESSION_KEY] = active_user.pk
    session.save()
    query, verifier = authorize(logged_in, oidc_client, acr_values=ACR_SECOND_FACTOR)
    assert "code" in query, query
    claims = id_token_claims(tokens(oidc_client, rp_secret, query["code"][0], verifier)["id_token"])
    assert claims["acr"] == ACR_SECOND_FACTOR and "mfa" in claims["amr"]


@pytest.mark.parametrize(
    "acr_values",
    [f"{ACR_SECOND_FACTOR} {ACR_PASSWORD}", ACR_PASSWORD, "urn:autre:niveau"],
)
def test_levels_the_session_meets_or_unknown_ones_give_a_code(
    logged_in, oidc_client, rp_secret, acr_values
):
    query, verifier = authorize(logged_in, oidc_client, acr_values=acr_values)
    assert "code" in query, query
    claims = id_token_claims(tokens(oidc_client, rp_secret, query["code"][0], verifier)["id_token"])
    assert claims["acr"] == ACR_PASSWORD


def test_standard_names_follow_the_release_list_like_cas_attributes(
    logged_in, oidc_client, rp_secret, cas_app
):
    app = oidc_client.portail_application
    app.released_attributes = ["identifier", "firstName"]
    app.save()
    query, verifier = authorize(logged_in, oidc_client, scope="openid profile ent")
    access = tokens(oidc_client, rp_secret, query["code"][0], verifier)["access_token"]
    info = HttpClient().get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}").json()
    assert info["given_name"] == "Jean" and info["firstName"] == "Jean"
    assert "family_name" not in info and "lastName" not in info
    assert "name" not in info and "displayName" not in info

    # The same release list on a CAS service gives the same attributes.
    cas_app.released_attributes = ["identifier", "firstName"]
    cas_app.save()
    location = logged_in.get("/cas/login", {"service": CAS_SERVICE})["Location"]
    ticket = parse_qs(urlsplit(location).query)["ticket"][0]
    body = (
        HttpClient()
        .get("/cas/p3/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE})
        .content.decode()
    )
    assert "<cas:firstName>Jean</cas:firstName>" in body
    assert "lastName" not in body and "displayName" not in body
