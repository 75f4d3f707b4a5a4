"""The token endpoint under races and replays (issue 9): concurrent refreshes, replayed codes,
redirect_uri mismatches. Run on PostgreSQL too (DATABASE_URL), where the race is real."""

import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection
from oauth2_provider.models import RefreshToken

from tests.sso.conftest import REDIRECT_URI
from tests.sso.test_oidc import authorize, code_login


def refresh(live_server, client_id, secret, refresh_token):
    return requests.post(
        live_server.url + "/o/token/",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(client_id, secret),
        timeout=30,
    )


def at_once(count, action):
    """Run `action` in `count` threads released together; their results, in thread order."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(index):
        barrier.wait()
        results[index] = action()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="a real race needs PostgreSQL: the live server shares in-memory SQLite across threads",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("trial", range(5))
def test_two_concurrent_refreshes_give_one_success_and_one_invalid_grant(
    logged_in, rp, oidc_client, rp_secret, live_server, trial
):
    token, _, _ = code_login(logged_in, rp, live_server)
    old = token["refresh_token"]
    answers = at_once(2, lambda: refresh(live_server, oidc_client.client_id, rp_secret, old))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 400], [a.text[:200] for a in answers]
    loser = next(a for a in answers if a.status_code == 400)
    assert loser.json()["error"] == "invalid_grant"
    winner = next(a for a in answers if a.status_code == 200).json()
    # The winner's new tokens work until a replay of the old one revokes the family.
    assert refresh(live_server, oidc_client.client_id, rp_secret, old).status_code == 400
    replayed = refresh(live_server, oidc_client.client_id, rp_secret, winner["refresh_token"])
    assert replayed.status_code == 400
    assert not RefreshToken.objects.filter(revoked=None).exists()
    userinfo = requests.get(
        live_server.url + "/o/userinfo/",
        headers={"Authorization": f"Bearer {winner['access_token']}"},
        timeout=5,
    )
    assert userinfo.status_code == 401


def exchange(live_server, client_id, secret, code, verifier, redirect_uri=REDIRECT_URI):
    return requests.post(
        live_server.url + "/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
        timeout=10,
    )


def test_a_replayed_code_revokes_the_tokens_of_its_first_exchange(
    logged_in, rp, oidc_client, rp_secret, live_server
):
    response, verifier, _ = authorize(logged_in, rp, live_server)
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    first = exchange(live_server, oidc_client.client_id, rp_secret, code, verifier)
    assert first.status_code == 200
    tokens = first.json()
    userinfo = live_server.url + "/o/userinfo/"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.get(userinfo, headers=bearer, timeout=5).status_code == 200

    replay = exchange(live_server, oidc_client.client_id, rp_secret, code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: what the first exchange issued is revoked.
    assert requests.get(userinfo, headers=bearer, timeout=5).status_code == 401
    again = refresh(live_server, oidc_client.client_id, rp_secret, tokens["refresh_token"])
    assert again.status_code == 400


def test_redirect_uri_mismatch_at_the_token_endpoint_is_invalid_grant(
    logged_in, rp, oidc_client, rp_secret, live_server
):
    oidc_client.redirect_uris = REDIRECT_URI + " https://rp.example.test/other"
    oidc_client.save()
    response, verifier, _ = authorize(logged_in, rp, live_server)
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    answer = exchange(
        live_server,
        oidc_client.client_id,
        rp_secret,
        code,
        verifier,
        redirect_uri="https://rp.example.test/other",
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="a real race needs PostgreSQL: the live server shares in-memory SQLite across threads",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("trial", range(5))
def test_two_concurrent_exchanges_of_one_code_are_a_replay(
    logged_in, rp, oidc_client, rp_secret, live_server, trial
):
    response, verifier, _ = authorize(logged_in, rp, live_server)
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    answers = at_once(
        2, lambda: exchange(live_server, oidc_client.client_id, rp_secret, code, verifier)
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 400], [a.text[:200] for a in answers]
    assert next(a for a in answers if a.status_code == 400).json()["error"] == "invalid_grant"
    # The code was presented twice: what its exchange issued is revoked (RFC 6749 §4.1.2).
    winner = next(a for a in answers if a.status_code == 200).json()
    userinfo = requests.get(
        live_server.url + "/o/userinfo/",
        headers={"Authorization": f"Bearer {winner['access_token']}"},
        timeout=5,
    )
    assert userinfo.status_code == 401
    assert not RefreshToken.objects.filter(revoked=None).exists()
