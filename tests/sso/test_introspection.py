"""Token introspection (RFC 7662; issue 9, point 3): client authentication required (§2.1), and a
client learns only about its own tokens (§4)."""

import requests

from tests.sso.test_oidc import code_login
from tests.sso.test_privacy import OTHER_REDIRECT, make_client


def introspect(live_server, token, auth=None, data=None):
    return requests.post(
        live_server.url + "/o/introspect/",
        data={"token": token, **(data or {})},
        auth=auth,
        timeout=5,
    )


def test_confidential_client_introspects_its_own_token(
    logged_in, rp, oidc_client, rp_secret, live_server
):
    token, _, _ = code_login(logged_in, rp, live_server)
    answer = introspect(live_server, token["access_token"], (oidc_client.client_id, rp_secret))
    assert answer.status_code == 200
    data = answer.json()
    assert data["active"] is True and data["client_id"] == oidc_client.client_id
    info = rp.get(live_server.url + "/o/userinfo/").json()
    assert data["sub"] == info["sub"]  # its pairwise identifier
    # Moodle has the identifier released: it may read it here too.
    assert data["username"] == "jean.dupont"
    # client_secret_post works as well.
    posted = introspect(
        live_server,
        token["access_token"],
        data={"client_id": oidc_client.client_id, "client_secret": rp_secret},
    )
    assert posted.json()["active"] is True


def test_another_clients_token_is_inactive_and_names_nobody(
    logged_in, rp, oidc_client, live_server
):
    token, _, _ = code_login(logged_in, rp, live_server)
    other, secret, _ = make_client("Cahier de textes", OTHER_REDIRECT)
    answer = introspect(live_server, token["access_token"], (other.client_id, secret))
    assert answer.status_code == 200
    assert answer.json() == {"active": False}


def test_public_client_and_anonymous_caller_get_401(logged_in, rp, oidc_client, live_server):
    token, _, _ = code_login(logged_in, rp, live_server)
    public, public_secret, _ = make_client(
        "Appli mobile", "https://mobile.example.test/cb", public=True
    )
    for auth, data in (
        (None, {}),
        (None, {"client_id": public.client_id}),
        ((public.client_id, ""), {}),
        ((public.client_id, public_secret), {}),  # a public client's secret proves nothing
        ((oidc_client.client_id, "mauvais-secret"), {}),
    ):
        answer = introspect(live_server, token["access_token"], auth, data)
        assert answer.status_code == 401, (auth, data)
        assert "username" not in answer.text and "active" not in answer.text


def test_identifier_is_not_given_where_it_is_not_released(
    logged_in, rp, oidc_client, rp_secret, live_server
):
    app = oidc_client.portail_application
    app.released_attributes = ["displayName"]
    app.save()
    rp.scope = "openid profile ent"
    token, _, _ = code_login(logged_in, rp, live_server)
    data = introspect(live_server, token["access_token"], (oidc_client.client_id, rp_secret)).json()
    assert data["active"] is True and "username" not in data


def test_revoked_or_unknown_token_is_inactive(logged_in, rp, oidc_client, rp_secret, live_server):
    auth = (oidc_client.client_id, rp_secret)
    assert introspect(live_server, "inconnu", auth).json() == {"active": False}
    token, _, _ = code_login(logged_in, rp, live_server)
    logged_in.post("/auth/logout")
    assert introspect(live_server, token["access_token"], auth).json() == {"active": False}


def test_get_and_missing_token_are_refused_without_a_500(oidc_client, rp_secret, live_server):
    auth = (oidc_client.client_id, rp_secret)
    assert requests.get(live_server.url + "/o/introspect/", auth=auth, timeout=5).status_code == 405
    missing = requests.post(live_server.url + "/o/introspect/", auth=auth, timeout=5)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
