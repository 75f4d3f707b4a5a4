"""Privacy of single sign-on (issue 9, point 2): pairwise subjects, the CAS opaque identifier,
sid / acr / amr, email_verified, offline_access. Flows driven by Authlib's client."""

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from cas import CASClient
from django.test import Client as DjangoClient
from django.utils import timezone
from joserfc import jwt
from joserfc.jwk import KeySet
from oauth2_provider.models import Application as Client

from portail.sso.models import Application
from tests.sso.conftest import REDIRECT_URI
from tests.sso.test_oidc import code_login, verify_id_token

OTHER_REDIRECT = "https://cahier.example.test/callback"


def make_client(name, redirect_uri, *, public=False, **app_fields):
    """A registered OIDC application: (client, secret, portail Application)."""
    secret = secrets.token_urlsafe(32)
    client = Client.objects.create(
        name=name,
        client_type=Client.CLIENT_PUBLIC if public else Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
        redirect_uris=redirect_uri,
        post_logout_redirect_uris=redirect_uri.rsplit("/", 1)[0] + "/bye",
        client_secret=secret,
        algorithm=Client.RS256_ALGORITHM,
        skip_authorization=True,
    )
    fields = {"released_attributes": ["displayName", "entProfile"], **app_fields}
    app = Application.objects.create(
        name=name,
        short_label=name[:2].upper(),
        url=redirect_uri.rsplit("/", 1)[0] + "/",
        kind=Application.Kind.OIDC,
        oidc_client=client,
        **fields,
    )
    return client, secret, app


def session_for(client, secret, redirect_uri, scope="openid profile ent"):
    return OAuth2Session(
        client.client_id,
        secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )


def login_at(browser, rp, live_server, redirect_uri):
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, _ = rp.create_authorization_url(
        live_server.url + "/o/authorize/", code_verifier=verifier, nonce=nonce
    )
    response = browser.get(url[len(live_server.url) :])
    assert response.status_code == 302 and response["Location"].startswith(redirect_uri)
    token = rp.fetch_token(
        live_server.url + "/o/token/",
        authorization_response=response["Location"],
        code_verifier=verifier,
    )
    return token, nonce


def id_claims(token, live_server):
    jwks = requests.get(live_server.url + "/o/.well-known/jwks.json", timeout=5).json()
    return jwt.decode(token["id_token"], KeySet.import_key_set(jwks)).claims


@pytest.fixture
def second_app(db):
    return make_client("Cahier de textes", OTHER_REDIRECT)


def test_two_applications_cannot_correlate_a_pupil(
    logged_in, rp, oidc_client, second_app, active_user, live_server
):
    token, nonce, _ = code_login(logged_in, rp, live_server)
    first = verify_id_token(token["id_token"], live_server, oidc_client.client_id, nonce)
    client, secret, _ = second_app
    other_rp = session_for(client, secret, OTHER_REDIRECT)
    other_token, _ = login_at(logged_in, other_rp, live_server, OTHER_REDIRECT)
    second = id_claims(other_token, live_server)
    # Never the database key, and a different identifier at each application.
    assert first["sub"] != second["sub"]
    assert str(active_user.pk) not in (first["sub"], second["sub"])
    assert rp.get(live_server.url + "/o/userinfo/").json()["sub"] == first["sub"]
    other_info = other_rp.get(live_server.url + "/o/userinfo/").json()
    assert other_info["sub"] == second["sub"]
    # Nothing else that names the account: the identifier is not released to this one.
    assert "identifier" not in other_info and "preferred_username" not in other_info


def test_subject_is_stable_across_logins_and_renames(
    logged_in, rp, oidc_client, active_user, live_server
):
    token, _, _ = code_login(logged_in, rp, live_server)
    before = id_claims(token, live_server)["sub"]
    active_user.identifier = "jean.dupont2"
    active_user.last_name = "Dupont-Martin"
    active_user.save()
    browser = DjangoClient()
    browser.force_login(active_user)
    again, _, _ = code_login(browser, rp, live_server)
    assert id_claims(again, live_server)["sub"] == before


def test_applications_of_one_sector_share_the_identifier(
    logged_in, rp, oidc_client, second_app, live_server
):
    client, secret, app = second_app
    for application in (app, oidc_client.portail_application):
        application.pairwise_sector = "editeur.example.test"
        application.save()
    token, _, _ = code_login(logged_in, rp, live_server)
    other, _ = login_at(
        logged_in, session_for(client, secret, OTHER_REDIRECT), live_server, OTHER_REDIRECT
    )
    assert id_claims(token, live_server)["sub"] == id_claims(other, live_server)["sub"]


def test_discovery_advertises_pairwise_subjects_and_sessions(client, db):
    config = client.get("/o/.well-known/openid-configuration").json()
    assert config["subject_types_supported"] == ["pairwise"]
    assert config["backchannel_logout_session_supported"] is True
    assert {"sid", "acr", "amr"} <= set(config["claims_supported"])
    assert "offline_access" in config["scopes_supported"]


# --- CAS: « identifiant opaque » ---


def cas_user(browser, live_server, service):
    cas = CASClient(version=3, service_url=service, server_url=live_server.url + "/cas/")
    response = browser.get(cas.get_login_url()[len(live_server.url) :])
    ticket = parse_qs(urlsplit(response["Location"]).query)["ticket"][0]
    user, attributes, _ = cas.verify_ticket(ticket)
    return user, attributes


def test_cas_opaque_identifier_is_per_service_and_the_identifier_stays_an_attribute(
    logged_in, active_user, live_server, db
):
    apps = []
    for host in ("notes", "cdi"):
        apps.append(
            Application.objects.create(
                name=host,
                short_label=host[:2].upper(),
                url=f"https://{host}.example.test/",
                kind=Application.Kind.CAS,
                cas_service_patterns=f"https://{host}.example.test/",
                cas_opaque_identifier=True,
                released_attributes=["identifier"] if host == "cdi" else ["displayName"],
            )
        )
    notes_user, notes_attributes = cas_user(logged_in, live_server, "https://notes.example.test/cb")
    cdi_user, cdi_attributes = cas_user(logged_in, live_server, "https://cdi.example.test/cb")
    assert notes_user != cdi_user
    assert "jean.dupont" not in (notes_user, cdi_user) and str(active_user.pk) != notes_user
    assert "identifier" not in notes_attributes
    # The administrator chose to release the plain identifier to the CDI only.
    assert cdi_attributes["identifier"] == "jean.dupont"
    # Stable: the same opaque identifier at the next login.
    assert cas_user(logged_in, live_server, "https://notes.example.test/cb")[0] == notes_user


def test_cas_service_without_the_option_keeps_the_ent_identifier(logged_in, cas_app, live_server):
    assert cas_user(logged_in, live_server, "https://notes.example.test/cas/callback")[0] == (
        "jean.dupont"
    )


# --- sid, acr, amr, email_verified, offline_access ---


def test_id_token_names_the_session_and_the_password(logged_in, rp, live_server):
    token, _, _ = code_login(logged_in, rp, live_server)
    claims = id_claims(token, live_server)
    assert claims["sid"] and claims["amr"] == ["pwd"]
    assert claims["acr"] == "urn:portail:acr:pwd"
    # A refreshed ID token keeps the session it was granted in (OIDC Core §12.2).
    refreshed = rp.refresh_token(live_server.url + "/o/token/")
    assert id_claims(refreshed, live_server)["sid"] == claims["sid"]


def test_second_factor_passed_shows_in_amr_and_acr(client, active_user, rp, live_server):
    from tests.conftest import enter_admin

    enter_admin(client, active_user)  # the console's TOTP was passed in this session
    token, _, _ = code_login(client, rp, live_server)
    claims = id_claims(token, live_server)
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "urn:portail:acr:mfa"


def test_email_is_verified_only_once_a_mailed_link_proved_it(
    logged_in, rp, active_user, live_server
):
    from portail.audit.services import record

    active_user.activated_at = timezone.now()
    active_user.save()
    code_login(logged_in, rp, live_server)
    userinfo = live_server.url + "/o/userinfo/"
    # Typed at the first connection: proves nothing (it could be anybody's address).
    record("account.activated", target=active_user, phone_given=False, email_proven=False)
    assert rp.get(userinfo).json()["email_verified"] is False
    # A password reset completed through the link mailed to that address proves it...
    record("account.password.reset", target=active_user)
    assert rp.get(userinfo).json()["email_verified"] is True
    # ...until the address changes.
    record("account.email.changed", target=active_user)
    assert rp.get(userinfo).json()["email_verified"] is False
    # The activation link mailed to the import's contact address, kept as the address, proves it.
    record("account.activated", target=active_user, phone_given=False, email_proven=True)
    assert rp.get(userinfo).json()["email_verified"] is True


def test_offline_access_is_accepted_and_gives_a_refresh_token(logged_in, rp, live_server):
    rp.scope = "openid profile offline_access"
    token, _, _ = code_login(logged_in, rp, live_server)
    assert "offline_access" in token["scope"] and token["refresh_token"]


def test_logout_ends_only_this_sessions_grants(
    client, active_user, rp, oidc_client, rp_secret, live_server, recorder
):
    app = oidc_client.portail_application
    app.oidc_backchannel_logout_uri = recorder.url + "/backchannel"
    app.save()
    phone, laptop = DjangoClient(), DjangoClient()
    phone.force_login(active_user)
    laptop.force_login(active_user)
    phone_token, _, _ = code_login(phone, rp, live_server)
    laptop_rp = session_for(oidc_client, rp_secret, REDIRECT_URI, "openid profile ent")
    laptop_token, _ = login_at(laptop, laptop_rp, live_server, REDIRECT_URI)
    phone.post("/auth/logout")
    assert rp.get(live_server.url + "/o/userinfo/").status_code == 401
    # The laptop's session and its application session go on.
    assert laptop_rp.get(live_server.url + "/o/userinfo/").status_code == 200
    posted = [r["form"] for r in recorder.requests if r["path"] == "/backchannel"]
    jwks = requests.get(live_server.url + "/o/.well-known/jwks.json", timeout=5).json()
    logout = jwt.decode(posted[0]["logout_token"][0], KeySet.import_key_set(jwks)).claims
    assert logout["sid"] == id_claims(phone_token, live_server)["sid"]
    assert logout["sid"] != id_claims(laptop_token, live_server)["sid"]
