"""Refresh tokens: the family ends 30 days after the login that authorized it, rotations or not."""

import pytest
import requests

from portail.sso.models import AuthorizationTime
from tests.conftest import STRONG_PASSWORD
from tests.sso.test_oidc import code_login

DAY = 24 * 3600


def refresh(live_server, oidc_client, rp_secret, refresh_token):
    return requests.post(
        live_server.url + "/o/token/",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(oidc_client.client_id, rp_secret),
        timeout=5,
    )


def age_family(seconds):
    """Move the family's authorization `seconds` into the past, as if that much time had gone by."""
    row = AuthorizationTime.objects.get(grant=None)
    row.auth_time -= seconds
    row.save(update_fields=["auth_time"])


@pytest.mark.django_db(transaction=True)
def test_refresh_after_30_days_from_the_first_grant_is_invalid_grant(
    client, active_user, rp, oidc_client, rp_secret, live_server, settings
):
    assert settings.PORTAIL_REMEMBER_ME_DAYS == 30
    client.post("/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD})
    token, _nonce, _ = code_login(client, rp, live_server)
    current = token["refresh_token"]
    # Refreshed every day for 29 days: each rotation works, none moves the family's end.
    for _day in range(29):
        age_family(DAY)
        answer = refresh(live_server, oidc_client, rp_secret, current)
        assert answer.status_code == 200, answer.text
        current = answer.json()["refresh_token"]
    age_family(DAY)
    answer = refresh(live_server, oidc_client, rp_secret, current)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
