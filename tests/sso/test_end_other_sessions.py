"""« Se déconnecter de tous les autres appareils » ends what single sign-on gave the other
sessions (CAS single logout, OIDC tokens with back-channel logout), and only theirs."""

import pytest
import requests
from cas import CASClient
from django.test import Client

from portail.sso.models import SingleLogoutRecord
from tests.helpers import STRONG_PASSWORD, login

from .test_single_sign_on import _oidc_login, tiles  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_other_devices_lose_their_applications_this_one_keeps_its_own(
    active_user,
    tiles,  # noqa: F811 (the imported fixture)
    recorder,
    live_server,
):
    cas_app, moodle, oidc, secret = tiles
    service = recorder.url + "/vie-scolaire/login"
    cas = CASClient(version=3, service_url=service, server_url=live_server.url + "/cas/")
    devices = {}
    for name in ("phone", "computer"):
        browser = Client()
        assert login(browser, active_user.identifier, STRONG_PASSWORD).status_code == 302
        response = browser.get(cas.get_login_url()[len(live_server.url) :])
        ticket = response["Location"].split("ticket=")[1]
        assert cas.verify_ticket(ticket)[0] == active_user.identifier
        devices[name] = (browser, ticket, _oidc_login(browser, tiles, live_server))
    phone, phone_ticket, phone_rp = devices["phone"]
    computer, computer_ticket, computer_rp = devices["computer"]

    assert phone.post("/compte/sessions/fermer-les-autres").status_code == 302

    # The computer's CAS service got its logoutRequest, the phone's did not.
    logouts = [
        r["form"]["logoutRequest"][0]
        for r in recorder.requests
        if r["method"] == "POST" and r["path"] == "/vie-scolaire/login"
    ]
    assert len(logouts) == 1
    assert CASClient(version=3).verify_logout_request(logouts[0], computer_ticket)
    assert SingleLogoutRecord.objects.filter(ticket=phone_ticket).exists()
    assert not SingleLogoutRecord.objects.filter(ticket=computer_ticket).exists()
    # The computer's OIDC tokens are dead, with a back-channel logout; the phone's work.
    assert computer_rp.get(live_server.url + "/o/userinfo/").status_code == 401
    assert phone_rp.get(live_server.url + "/o/userinfo/").status_code == 200
    refresh = requests.post(
        live_server.url + "/o/token/",
        data={"grant_type": "refresh_token", "refresh_token": computer_rp.token["refresh_token"]},
        auth=(oidc.client_id, secret),
        timeout=5,
    )
    assert refresh.status_code == 400
    assert any(
        r["method"] == "POST" and r["path"] == "/moodle/backchannel-logout"
        for r in recorder.requests
    )
    # The computer must log in again; the phone stays.
    assert computer.get("/").status_code == 302
    assert phone.get("/").status_code == 200
