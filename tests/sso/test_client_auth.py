"""Client authentication at the token endpoint (issue 9, point 4): secrets as a keyed digest,
failure limits, client_credentials, PKCE per client, native apps' redirect URIs (RFC 8252)."""

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from django.contrib.auth.hashers import make_password
from oauth2_provider.models import Application as Client

from tests.sso.conftest import REDIRECT_URI, pkce_authorize
from tests.sso.test_oidc import code_login
from tests.sso.test_privacy import make_client


def stored_secret(client):
    return Client.objects.values_list("client_secret", flat=True).get(pk=client.pk)


def test_secret_is_stored_as_a_keyed_digest_and_authenticates(
    logged_in, rp, oidc_client, rp_secret, live_server
):
    stored = stored_secret(oidc_client)
    assert stored.startswith("portail_client_hmac_sha256$")
    assert rp_secret not in stored
    token, _, _ = code_login(logged_in, rp, live_server)  # client_secret_basic (Authlib)
    assert token["access_token"]
    # client_secret_post, and a wrong secret.
    for secret, status in ((rp_secret, 200), ("faux" + rp_secret, 401)):
        answer = requests.post(
            live_server.url + "/o/token/",
            data={
                "grant_type": "refresh_token",
                "refresh_token": rp.token["refresh_token"],
                "client_id": oidc_client.client_id,
                "client_secret": secret,
            },
            timeout=5,
        )
        assert answer.status_code == status, answer.text
        if status == 200:
            rp.token = answer.json()


def test_argon2_secret_of_before_keeps_working_and_is_replaced_by_the_digest(
    logged_in, rp, oidc_client, rp_secret, live_server
):
    Client.objects.filter(pk=oidc_client.pk).update(
        client_secret=make_password(rp_secret, hasher="argon2")
    )
    assert stored_secret(oidc_client).startswith("argon2$")
    code_login(logged_in, rp, live_server)
    assert stored_secret(oidc_client).startswith("portail_client_hmac_sha256$")
    code_login(logged_in, rp, live_server)  # and the digest authenticates the next time


def test_admin_refuses_a_short_typed_secret(client, db):
    from portail.accounts.models import User
    from tests.conftest import enter_admin

    enter_admin(client, User.objects.create_superuser("admin.region", "un mot de passe solide 42"))
    response = client.post(
        "/admin/oauth2_provider/application/add/",
        {
            "client_id": "appli",
            "client_secret": "motdepasse123",
            "client_type": Client.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Client.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": REDIRECT_URI,
            "post_logout_redirect_uris": "",
            "allowed_origins": "",
            "name": "Appli",
            "algorithm": Client.RS256_ALGORITHM,
        },
    )
    assert response.status_code == 200
    assert "au moins 128 bits" in response.content.decode()
    assert not Client.objects.filter(client_id="appli").exists()


def test_repeated_bad_credentials_are_limited_per_client_and_address(
    oidc_client, rp_secret, live_server, settings
):
    settings.PORTAIL_RATE_LIMITS = {
        **settings.PORTAIL_RATE_LIMITS,
        "token:client": (3, 900),
        "token:address": (6, 900),
    }

    def token_request(client_id, secret):
        return requests.post(
            live_server.url + "/o/token/",
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            auth=(client_id, secret),
            timeout=5,
        )

    for _ in range(3):
        assert token_request(oidc_client.client_id, "faux").status_code == 401
    limited = token_request(oidc_client.client_id, rp_secret)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    # Another client at the same address still has its own budget, until the address's is spent.
    other, secret, _ = make_client("Cahier", "https://cahier.example.test/cb")
    assert token_request(other.client_id, secret).status_code == 400  # authenticated: bad token
    for _ in range(3):
        token_request("inconnu-" + secrets.token_hex(4), "faux")
    assert token_request(other.client_id, secret).status_code == 429


# --- client_credentials (RFC 6749 §4.4) ---


def client_credentials(live_server, client_id, secret, scope=None):
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    return requests.post(
        live_server.url + "/o/token/", data=data, auth=(client_id, secret), timeout=5
    )


def test_client_credentials_for_a_confidential_client_with_its_scopes(
    oidc_client, rp_secret, live_server
):
    app = oidc_client.portail_application
    assert client_credentials(live_server, oidc_client.client_id, rp_secret).status_code == 400
    app.oidc_client_credentials_scopes = "ent"
    app.full_clean()
    app.save()
    answer = client_credentials(live_server, oidc_client.client_id, rp_secret)
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == "ent" and "refresh_token" not in answer.json()
    refused = client_credentials(live_server, oidc_client.client_id, rp_secret, "ent email")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    # Server to server tokens name no user, and introspection tells so.
    info = requests.post(
        live_server.url + "/o/introspect/",
        data={"token": answer.json()["access_token"]},
        auth=(oidc_client.client_id, rp_secret),
        timeout=5,
    ).json()
    assert info["active"] is True and "sub" not in info and "username" not in info


def test_client_credentials_refused_to_a_public_client(live_server, db):
    client, secret, app = make_client("Mobile", "https://m.example.test/cb", public=True)
    app.oidc_client_credentials_scopes = "ent"
    app.save()
    answer = client_credentials(live_server, client.client_id, secret)
    assert answer.status_code in (400, 401)
    assert "access_token" not in answer.json()


def test_unknown_client_credentials_scope_is_refused_by_the_model(oidc_client):
    from django.core.exceptions import ValidationError

    app = oidc_client.portail_application
    app.oidc_client_credentials_scopes = "ent admin"
    with pytest.raises(ValidationError, match="Portée inconnue : admin"):
        app.full_clean()


# --- PKCE: always for public clients, per confidential client ---


def authorize_without_pkce(browser, client, redirect_uri):
    return browser.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid",
            "state": "s",
        },
    )


def test_confidential_client_may_be_exempted_from_pkce(
    logged_in, oidc_client, rp_secret, live_server
):
    refused = authorize_without_pkce(logged_in, oidc_client, REDIRECT_URI)
    assert "error=invalid_request" in refused["Location"]
    app = oidc_client.portail_application
    app.oidc_require_pkce = False
    app.save()
    response = authorize_without_pkce(logged_in, oidc_client, REDIRECT_URI)
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    rp = OAuth2Session(oidc_client.client_id, rp_secret, redirect_uri=REDIRECT_URI)
    token = rp.fetch_token(live_server.url + "/o/token/", code=code)
    assert token["id_token"]


def test_public_client_always_needs_pkce(logged_in, db):
    client, _, app = make_client("Mobile", "https://m.example.test/cb", public=True)
    app.oidc_require_pkce = False  # has no effect on a public client
    app.save()
    response = authorize_without_pkce(logged_in, client, "https://m.example.test/cb")
    assert "error=invalid_request" in response["Location"]


# --- Native apps' redirect URIs (RFC 8252 §7.1, §7.3), production settings ---


def public_code_flow(browser, live_server, client, redirect_uri):
    return pkce_authorize(browser, client, redirect_uri=redirect_uri, scope="openid", state="s")


def test_native_app_on_loopback_any_port(logged_in, live_server, settings, db):
    assert not settings.DEBUG
    client, _, _ = make_client("Mobile", "http://127.0.0.1/callback", public=True)
    response, verifier = public_code_flow(
        logged_in, live_server, client, "http://127.0.0.1:51734/callback"
    )
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("http://127.0.0.1:51734/callback?code=")
    token = requests.post(
        live_server.url + "/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": parse_qs(urlsplit(location).query)["code"][0],
            "redirect_uri": "http://127.0.0.1:51734/callback",
            "client_id": client.client_id,
            "code_verifier": verifier,
        },
        timeout=5,
    )
    assert token.status_code == 200, token.text


def test_plain_http_elsewhere_is_refused(logged_in, db):
    confidential, _, _ = make_client("Serveur", "http://127.0.0.1/callback")
    response, _ = public_code_flow(logged_in, None, confidential, "http://127.0.0.1/callback")
    assert response.status_code == 400 and "code=" not in response.get("Location", "")
    remote, _, _ = make_client("Mobile", "http://app.example.test/callback", public=True)
    response, _ = public_code_flow(logged_in, None, remote, "http://app.example.test/callback")
    assert response.status_code == 400


def test_private_use_scheme_of_a_native_app(logged_in, settings, db):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http", "fr.region.ent"],
    }
    client, _, _ = make_client("Mobile", "fr.region.ent:/oauth2redirect", public=True)
    response, _ = public_code_flow(logged_in, None, client, "fr.region.ent:/oauth2redirect")
    assert response.status_code == 302
    assert response["Location"].startswith("fr.region.ent:/oauth2redirect?code=")


@pytest.mark.parametrize(
    "client_type, uri, admitted",
    [
        (Client.CLIENT_PUBLIC, "http://127.0.0.1/cb", True),
        (Client.CLIENT_PUBLIC, "http://[::1]/cb", True),
        (Client.CLIENT_PUBLIC, "http://localhost/cb", False),
        (Client.CLIENT_CONFIDENTIAL, "http://127.0.0.1/cb", False),
        (Client.CLIENT_PUBLIC, "http://app.example.test/cb", False),
        (Client.CLIENT_PUBLIC, "fr.region.ent:/cb", True),
        (Client.CLIENT_CONFIDENTIAL, "fr.region.ent:/cb", False),
        (Client.CLIENT_PUBLIC, "myapp:/cb", False),
        (Client.CLIENT_CONFIDENTIAL, "https://app.example.test/cb", True),
    ],
)
def test_redirect_uri_rules(client_type, uri, admitted, settings):
    from types import SimpleNamespace

    from portail.sso.clients import redirect_uri_problem

    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http", "fr.region.ent", "myapp"],
    }
    problem = redirect_uri_problem(uri, SimpleNamespace(client_type=client_type))
    assert (problem is None) == admitted, problem
