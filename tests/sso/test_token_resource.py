"""RFC 8707 resource indicators at the token endpoint: a code exchange may narrow the resources
granted at the authorization endpoint, never widen them, and inherits them when it names none.

The validator answers this from the code's row it has already read (oidc.py); these tests hold
it to the toolkit's own behaviour.
"""

import base64
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.test import Client as HttpClient
from oauth2_provider.models import AccessToken

from tests.sso.conftest import REDIRECT_URI

pytestmark = pytest.mark.django_db

API = "https://api.example.test/"


def exchange(logged_in, oidc_client, rp_secret, granted, asked):
    verifier = secrets.token_urlsafe(48)
    query = {
        "response_type": "code",
        "client_id": oidc_client.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if granted:
        query["resource"] = granted
    location = logged_in.get("/o/authorize/", query)["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    basic = base64.b64encode(f"{oidc_client.client_id}:{rp_secret}".encode()).decode()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    if asked:
        form["resource"] = asked
    return HttpClient(HTTP_AUTHORIZATION=f"Basic {basic}").post("/o/token/", form)


def test_an_exchange_cannot_widen_the_granted_resources(logged_in, oidc_client, rp_secret):
    answer = exchange(logged_in, oidc_client, rp_secret, API, "https://other.example.test/")
    assert answer.status_code == 400
    # (The toolkit answers this one with an HTML content type; its body names the error.)
    assert b"invalid_target" in answer.content, answer.content
    assert not AccessToken.objects.exists()


def test_an_exchange_naming_no_resource_inherits_the_granted_ones(
    logged_in, oidc_client, rp_secret
):
    answer = exchange(logged_in, oidc_client, rp_secret, API, None)
    assert answer.status_code == 200, answer.content
    token = AccessToken.objects.get(token_checksum=_checksum(answer.json()["access_token"]))
    assert token.resource == [API]


def test_an_exchange_may_name_a_granted_resource(logged_in, oidc_client, rp_secret):
    answer = exchange(logged_in, oidc_client, rp_secret, API, API)
    assert answer.status_code == 200, answer.content


def test_without_granted_resources_the_exchange_keeps_its_own(logged_in, oidc_client, rp_secret):
    answer = exchange(logged_in, oidc_client, rp_secret, None, API)
    assert answer.status_code == 200, answer.content
    token = AccessToken.objects.get(token_checksum=_checksum(answer.json()["access_token"]))
    assert token.resource == [API]


def _checksum(token):
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()
