"""Logout by id_token_hint (RP-Initiated Logout 1.0 §2; issue 9, point 3).

An ID token found in a log or a URL must not log a user out everywhere: the hint ends only the
grant of the application it was issued to, in the session it names; the portal session ends only
when its user says so. Hints are checked for signature, issuer, audience and age.
"""

import json
import re
import time
from html import unescape

import pytest
from django.test import Client as DjangoClient
from jwcrypto import jwk
from jwcrypto import jwt as jw

from portail.typography import normalised
from tests.sso.conftest import REDIRECT_URI
from tests.sso.test_oidc import code_login
from tests.sso.test_privacy import OTHER_REDIRECT, login_at, make_client, session_for

BYE = "https://rp.example.test/bye"


@pytest.fixture
def two_grants(logged_in, rp, oidc_client, live_server):
    """The user logged in at Moodle (rp) and at a second application, in one portal session."""
    token, _, _ = code_login(logged_in, rp, live_server)
    client, secret, _ = make_client("Cahier de textes", OTHER_REDIRECT)
    other_rp = session_for(client, secret, OTHER_REDIRECT)
    login_at(logged_in, other_rp, live_server, OTHER_REDIRECT)
    return token, other_rp


def alive(rp, live_server):
    return rp.get(live_server.url + "/o/userinfo/").status_code == 200


def resigned(id_token, *, key_pem=None, **changes):
    """The same ID token with some claims changed, signed by the portal's key (or key_pem)."""
    from django.conf import settings

    claims = json.loads(jw.JWT(jwt=id_token, check_claims=False).token.objects["payload"])
    claims.update(changes)
    key = jwk.JWK.from_pem((key_pem or settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]).encode())
    token = jw.JWT(header={"alg": "RS256", "kid": key.thumbprint()}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def test_anonymous_hint_ends_only_that_applications_grant(
    logged_in, rp, oidc_client, two_grants, live_server
):
    token, other_rp = two_grants
    stranger = DjangoClient()  # someone who found the ID token in a log
    response = stranger.get(
        "/o/logout/",
        {"id_token_hint": token["id_token"], "post_logout_redirect_uri": BYE, "state": "x"},
    )
    assert response.status_code == 302 and response["Location"] == BYE + "?state=x"
    assert not alive(rp, live_server)
    # The other application and the portal session of the user are untouched.
    assert alive(other_rp, live_server)
    assert "_auth_user_id" in logged_in.session
    assert logged_in.get("/").status_code == 200


def test_user_who_stays_connected_keeps_the_portal_and_other_applications(
    logged_in, rp, oidc_client, two_grants, live_server
):
    token, other_rp = two_grants
    params = {"id_token_hint": token["id_token"], "post_logout_redirect_uri": BYE}
    page = normalised(unescape(logged_in.get("/o/logout/", params).content.decode()))
    assert "Se déconnecter de l'ENT" in page and "Rester connecté" in page
    assert "Moodle" in page
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    # « Rester connecté »: the form without "allow".
    response = logged_in.post("/o/logout/", {**params, "csrfmiddlewaretoken": csrf})
    assert response.status_code == 302 and response["Location"] == BYE
    assert "_auth_user_id" in logged_in.session
    assert not alive(rp, live_server) and alive(other_rp, live_server)


def test_user_who_confirms_leaves_the_portal_and_every_application(
    logged_in, rp, oidc_client, two_grants, live_server
):
    token, other_rp = two_grants
    params = {"id_token_hint": token["id_token"], "post_logout_redirect_uri": BYE}
    response = logged_in.post("/o/logout/", {**params, "allow": "on"})
    assert response.status_code == 302 and response["Location"] == BYE
    assert "_auth_user_id" not in logged_in.session
    assert not alive(other_rp, live_server)


def test_hint_long_expired_revokes_nothing(logged_in, rp, oidc_client, live_server, settings):
    token, _, _ = code_login(logged_in, rp, live_server)
    settings.PORTAIL_OIDC_LOGOUT_HINT_GRACE_SECONDS = 3600
    old = resigned(token["id_token"], exp=int(time.time()) - 3601)
    response = DjangoClient().get("/o/logout/", {"id_token_hint": old})
    assert response.status_code == 200  # the logged-out page, nothing done
    assert alive(rp, live_server)
    # Within the bound, the same hint acts.
    recent = resigned(token["id_token"], exp=int(time.time()) - 3500)
    DjangoClient().get("/o/logout/", {"id_token_hint": recent})
    assert not alive(rp, live_server)


@pytest.mark.parametrize("forgery", ["other_key", "other_issuer", "unknown_audience"])
def test_forged_hint_is_refused_and_revokes_nothing(
    logged_in, rp, oidc_client, live_server, forgery
):
    token, _, _ = code_login(logged_in, rp, live_server)
    if forgery == "other_key":
        pem = jwk.JWK.generate(kty="RSA", size=2048).export_to_pem(True, None).decode()
        hint = resigned(token["id_token"], key_pem=pem)
    elif forgery == "other_issuer":
        hint = resigned(token["id_token"], iss="https://evil.example.test/o")
    else:
        hint = resigned(token["id_token"], aud="unknown-client")
    response = DjangoClient().get("/o/logout/", {"id_token_hint": hint})
    assert response.status_code == 400
    assert "Demande de déconnexion refusée" in response.content.decode()
    assert alive(rp, live_server)


def test_hint_of_another_client_than_the_one_named_is_refused(
    logged_in, rp, oidc_client, two_grants, live_server
):
    token, other_rp = two_grants
    response = DjangoClient().get(
        "/o/logout/", {"id_token_hint": token["id_token"], "client_id": "cahier-inconnu"}
    )
    assert response.status_code == 400
    assert alive(rp, live_server)


def test_garbage_hint_is_a_french_page_not_a_500(db):
    response = DjangoClient().get("/o/logout/", {"id_token_hint": "pas.un.jeton"})
    assert response.status_code == 400
    assert "Demande de déconnexion refusée" in response.content.decode()


def test_portal_logout_stays_one_click(logged_in, rp, live_server):
    code_login(logged_in, rp, live_server)
    response = logged_in.post("/auth/logout")
    assert response.status_code == 302
    assert "_auth_user_id" not in logged_in.session
    assert not alive(rp, live_server)


def test_redirect_only_to_a_registered_post_logout_uri(logged_in, rp, oidc_client, live_server):
    token, _, _ = code_login(logged_in, rp, live_server)
    response = DjangoClient().get(
        "/o/logout/",
        {"id_token_hint": token["id_token"], "post_logout_redirect_uri": "https://evil.test/"},
    )
    assert response.status_code == 400
    # The client's redirect URI is not a post-logout target either.
    response = DjangoClient().get(
        "/o/logout/",
        {"id_token_hint": token["id_token"], "post_logout_redirect_uri": REDIRECT_URI},
    )
    assert response.status_code == 400
