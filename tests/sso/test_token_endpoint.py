"""The token endpoint's lean path (portail/sso/token_endpoint.py, issue 9 §6).

A valid code exchange or refresh is answered by the lean path; every other request goes through
django-oauth-toolkit and oauthlib as before. Each case here is sent twice: as it is, and with the
lean path switched off (the toolkit alone, the reference); the answers must be the same: status,
error, headers, the ID token's claims, and what is stored.
"""

import base64
import json
from urllib.parse import urlencode

import pytest
from django.test import Client as HttpClient
from jwcrypto import jwk, jwt
from oauth2_provider.models import AccessToken, IDToken, RefreshToken
from oauth2_provider.settings import oauth2_settings

from portail.sso import token_endpoint
from portail.sso.models import AuthorizationTime, SpentCode
from tests.sso.conftest import REDIRECT_URI, authorized_code
from tests.sso.test_privacy import make_client

FORM = "application/x-www-form-urlencoded"
# Claims that differ between two ID tokens of the same login by construction.
VARYING = {"jti", "iat", "exp", "at_hash"}


@pytest.fixture
def toolkit_only(monkeypatch):
    """The reference: the toolkit's path for every request."""

    def switch():
        monkeypatch.setattr(token_endpoint, "answer", lambda request: None)

    return switch


@pytest.fixture
def public_client(db):
    client, _, _ = make_client(
        "Appli mobile",
        REDIRECT_URI,
        public=True,
        released_attributes=["identifier", "displayName", "entProfile", "uai", "email"],
    )
    return client


def authorize(browser, client, scope="openid profile ent"):
    return authorized_code(browser, client, scope)


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post(fields, authorization=None, body=None, **headers):
    if authorization:
        headers["HTTP_AUTHORIZATION"] = authorization
    data = body if body is not None else urlencode(fields)
    return HttpClient().post("/o/token/", data, content_type=FORM, **headers)


def claims_of(id_token):
    key = jwk.JWK.from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY.encode())
    return json.loads(jwt.JWT(jwt=id_token, key=key, algs=["RS256"]).claims)


def code_fields(code, verifier, **more):
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    fields.update(more)
    return {name: value for name, value in fields.items() if value is not None}


def stable(answer):
    body = answer.json()
    headers = {name: answer[name] for name in ("Content-Type", "Cache-Control", "Pragma")}
    if answer.status_code != 200:
        return answer.status_code, body, headers
    claims = {k: v for k, v in claims_of(body["id_token"]).items() if k not in VARYING}
    keys = sorted(body)
    return answer.status_code, keys, body["scope"], body["expires_in"], claims, headers


def _both(logged_in, toolkit_only, make_request):
    """make_request() once on the lean path, once on the toolkit's: the two answers."""
    lean = make_request()
    toolkit_only()
    reference = make_request()
    return lean, reference


@pytest.mark.parametrize("auth", ["basic", "post", "public"])
def test_a_valid_exchange_and_refresh_answer_as_the_toolkit_does(
    logged_in, oidc_client, rp_secret, public_client, toolkit_only, auth
):
    client = public_client if auth == "public" else oidc_client

    def credentials():
        if auth == "basic":
            return {}, basic(client.client_id, rp_secret)
        if auth == "post":
            return {"client_id": client.client_id, "client_secret": rp_secret}, None
        return {"client_id": client.client_id}, None

    def login_and_refresh():
        code, verifier = authorize(logged_in, client, scope="openid profile email ent")
        more, authorization = credentials()
        first = post(code_fields(code, verifier, **more), authorization)
        assert first.status_code == 200, first.content
        tokens = first.json()
        fields = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **more}
        second = post(fields, authorization)
        assert second.status_code == 200, second.content
        # The rows as the toolkit stores them: the old refresh token revoked, its access token
        # gone, the new access token's source the old refresh token, one family.
        old = RefreshToken.objects.get(revoked__isnull=False, application=client)
        new = RefreshToken.objects.get(revoked=None, application=client)
        assert old.token_family == new.token_family and old.access_token_id is None
        assert new.access_token.source_refresh_token_id == old.pk
        assert str(new.access_token.id_token.jti) == claims_of(second.json()["id_token"])["jti"]
        assert not AccessToken.objects.filter(source_refresh_token=None, application=client)
        family = AuthorizationTime.objects.filter(token_family=new.token_family)
        assert family.count() == (1 if AuthorizationTime.objects.exists() else 0)
        assert SpentCode.objects.filter(token_family=new.token_family).count() == 1
        # The new access token opens userinfo; the old refresh token, replayed, revokes it all.
        bearer = f"Bearer {second.json()['access_token']}"
        assert HttpClient().get("/o/userinfo/", HTTP_AUTHORIZATION=bearer).status_code == 200
        replay = post(fields, authorization)
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        assert HttpClient().get("/o/userinfo/", HTTP_AUTHORIZATION=bearer).status_code == 401
        RefreshToken.objects.all().delete()
        AccessToken.objects.all().delete()
        IDToken.objects.all().delete()
        return [stable(first), stable(second), stable(replay)]

    lean, reference = _both(logged_in, toolkit_only, login_and_refresh)
    assert lean == reference
    assert "sid" in lean[0][4] or "auth_time" in lean[0][4]
    assert lean[0][4]["nonce"] == "n-0S6_WzA2Mj" and "nonce" not in lean[1][4]


# Each error case: (a name, a function of (code, verifier, client, secret) giving the request).
ERRORS = {
    "wrong verifier": lambda c, v, cl, s: (code_fields(c, "x" * 43), basic(cl.client_id, s)),
    "short verifier": lambda c, v, cl, s: (code_fields(c, "abc"), basic(cl.client_id, s)),
    "no verifier": lambda c, v, cl, s: (code_fields(c, None), basic(cl.client_id, s)),
    "other redirect_uri": lambda c, v, cl, s: (
        code_fields(c, v, redirect_uri="https://rp.example.test/other"),
        basic(cl.client_id, s),
    ),
    "no redirect_uri": lambda c, v, cl, s: (
        {**code_fields(c, v), "redirect_uri": ""},
        basic(cl.client_id, s),
    ),
    "unknown code": lambda c, v, cl, s: (code_fields("inconnu", v), basic(cl.client_id, s)),
    "wrong secret": lambda c, v, cl, s: (code_fields(c, v), basic(cl.client_id, s + "x")),
    "secret in body and header": lambda c, v, cl, s: (
        code_fields(c, v, client_secret=s),
        basic(cl.client_id, s),
    ),
    "other client_id in body": lambda c, v, cl, s: (
        code_fields(c, v, client_id="autre"),
        basic(cl.client_id, s),
    ),
    "no credentials": lambda c, v, cl, s: (code_fields(c, v), None),
    "unreadable basic": lambda c, v, cl, s: (code_fields(c, v), "Basic !!!"),
    "bearer header": lambda c, v, cl, s: (code_fields(c, v), "Bearer abc"),
    "unknown grant": lambda c, v, cl, s: (
        {**code_fields(c, v), "grant_type": "password"},
        basic(cl.client_id, s),
    ),
    "resource": lambda c, v, cl, s: (
        code_fields(c, v, resource="https://api.example.test/"),
        basic(cl.client_id, s),
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_a_refused_exchange_answers_as_the_toolkit_does(
    logged_in, oidc_client, rp_secret, toolkit_only, case
):
    def attempt():
        code, verifier = authorize(logged_in, oidc_client)
        fields, authorization = ERRORS[case](code, verifier, oidc_client, rp_secret)
        answer = post(fields, authorization)
        # The code is still there when the request was refused before it was used.
        return stable(answer)

    lean, reference = _both(logged_in, toolkit_only, attempt)
    assert lean == reference
    # The toolkit takes a secret in both places, and ignores an unknown resource of a code
    # granted without one: the lean path leaves both to it.
    assert lean[0] != 200 or case in ("resource", "secret in body and header")


def test_a_duplicated_parameter_answers_as_the_toolkit_does(
    logged_in, oidc_client, rp_secret, toolkit_only
):
    def attempt():
        code, verifier = authorize(logged_in, oidc_client)
        body = urlencode(code_fields(code, verifier)) + "&code=" + code
        return stable(post({}, basic(oidc_client.client_id, rp_secret), body=body))

    lean, reference = _both(logged_in, toolkit_only, attempt)
    assert lean == reference  # Django's form keeps the last value; oauthlib sees one


def test_a_replayed_code_revokes_what_the_lean_path_issued(logged_in, oidc_client, rp_secret):
    code, verifier = authorize(logged_in, oidc_client)
    authorization = basic(oidc_client.client_id, rp_secret)
    first = post(code_fields(code, verifier), authorization)
    assert first.status_code == 200
    replay = post(code_fields(code, verifier), authorization)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert not RefreshToken.objects.filter(revoked=None).exists()
    assert not AccessToken.objects.exists()


def test_a_refresh_of_another_clients_token_answers_as_the_toolkit_does(
    logged_in, oidc_client, rp_secret, public_client, toolkit_only
):
    def attempt():
        code, verifier = authorize(logged_in, public_client)
        tokens = post(code_fields(code, verifier, client_id=public_client.client_id)).json()
        fields = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        answer = post(fields, basic(oidc_client.client_id, rp_secret))
        # Still usable by its own client.
        mine = post({**fields, "client_id": public_client.client_id})
        return stable(answer), mine.status_code

    lean, reference = _both(logged_in, toolkit_only, attempt)
    assert lean == reference and lean[0][0] == 400 and lean[1] == 200


def test_a_public_client_sending_a_secret_answers_as_the_toolkit_does(
    logged_in, public_client, toolkit_only
):
    def attempt():
        code, verifier = authorize(logged_in, public_client)
        fields = code_fields(
            code, verifier, client_id=public_client.client_id, client_secret="devine"
        )
        return stable(post(fields))

    lean, reference = _both(logged_in, toolkit_only, attempt)
    assert lean == reference


def test_the_refused_requests_still_count_for_the_rate_limits(
    logged_in, oidc_client, rp_secret, settings
):
    code, verifier = authorize(logged_in, oidc_client)
    statuses = [
        post(code_fields(code, verifier), basic(oidc_client.client_id, "faux")).status_code
        for _ in range(31)
    ]
    # settings.PORTAIL_RATE_LIMITS["token:client"]: 30 failures per 15 minutes.
    assert statuses[:30] == [401] * 30 and statuses[30] == 429
