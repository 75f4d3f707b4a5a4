"""TOTP (RFC 6238) enrolment and the second factor asked once per console session."""

import re
import time

import pyotp
import pytest

from portail.audit.models import Event
from portail.console import otp, services
from portail.console.models import RecoveryCode, TOTPDevice
from tests.conftest import STRONG_PASSWORD

from .conftest import TOTP_SECRET, enrol, text, totp_now

pytestmark = pytest.mark.django_db


def portal_login(client, identifier="anne.martin"):
    response = client.post("/auth/login", {"identifier": identifier, "password": STRONG_PASSWORD})
    assert response.status_code == 302
    return response


def test_enrolment_shows_qr_and_secret_then_recovery_codes_once(client, referent):
    portal_login(client)
    response = client.get("/console/")
    assert response.status_code == 302 and response["Location"] == "/console/securite/enrolement"
    page = text(client.get("/console/securite/enrolement"))
    assert "<svg" in page and "<script>" not in page and "style=" not in page
    shown = re.search(r"<code>([A-Z2-7 ]+)</code>", page).group(1).replace(" ", "")
    device = TOTPDevice.objects.get(user=referent)
    assert shown not in device.encrypted_secret and otp.decrypt(device.encrypted_secret) == shown

    wrong = client.post("/console/securite/enrolement", {"code": "000000"})
    assert "Le code est incorrect" in text(wrong)

    done = client.post("/console/securite/enrolement", {"code": pyotp.TOTP(shown).now()})
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", text(done))
    assert len(codes) == 10 == RecoveryCode.objects.filter(user=referent).count()
    stored = set(RecoveryCode.objects.values_list("digest", flat=True))
    assert not any(code in digest for code in codes for digest in stored)
    assert Event.objects.filter(tag="console.totp.enrolled", target=referent).exists()
    # The secret is never shown again, and the console opens in this session.
    again = client.get("/console/securite/enrolement")
    assert again.status_code == 302 and again["Location"] == "/console/"
    assert client.get("/console/").status_code == 200


def test_console_asks_the_code_once_per_session(client, referent):
    enrol(referent)
    portal_login(client)
    response = client.get("/console/fiches")
    assert response.status_code == 302
    assert response["Location"] == "/console/securite/verification?next=%2Fconsole%2Ffiches"
    bad = client.post(
        "/console/securite/verification", {"code": "123456", "next": "/console/fiches"}
    )
    assert bad.status_code == 200 and "Le code est incorrect" in text(bad)
    good = client.post(
        "/console/securite/verification", {"code": totp_now(), "next": "/console/fiches"}
    )
    assert good.status_code == 302 and good["Location"] == "/console/fiches"
    assert client.get("/console/").status_code == 200
    assert client.get("/console/journal").status_code == 200
    # A new portal session asks again.
    client.post("/auth/logout")
    portal_login(client)
    assert client.get("/console/").status_code == 302


def test_a_used_code_is_refused_the_second_time(client, referent):
    enrol(referent)
    code = totp_now()
    portal_login(client)
    assert client.post("/console/securite/verification", {"code": code}).status_code == 302
    client.post("/auth/logout")
    portal_login(client)
    replay = client.post("/console/securite/verification", {"code": code})
    assert replay.status_code == 200 and "déjà servi" in text(replay)
    assert Event.objects.filter(tag="console.totp.failed", data__replay=True).exists()


def test_one_step_of_drift_is_accepted_two_are_not(referent, rf):
    enrol(referent)
    request = rf.post("/")
    request.user = referent
    totp = pyotp.TOTP(TOTP_SECRET)
    now = time.time()
    with pytest.raises(services.InvalidSecondFactor):
        services.verify_second_factor(request, referent, totp.at(now - 60), at=now)
    assert services.verify_second_factor(request, referent, totp.at(now - 30), at=now) == "totp"
    assert services.verify_second_factor(request, referent, totp.at(now + 30), at=now) == "totp"
    # An older step than the last accepted one is a replay, even if within the window.
    with pytest.raises(services.InvalidSecondFactor):
        services.verify_second_factor(request, referent, totp.at(now), at=now)


def test_recovery_code_opens_the_console_once(client, referent, rf):
    request = rf.post("/")
    request.user = referent
    secret = services.start_totp_enrolment(referent)
    codes = services.confirm_totp_enrolment(request, referent, pyotp.TOTP(secret).now())
    portal_login(client)
    used = client.post("/console/securite/verification", {"code": codes[0].upper()})
    assert used.status_code == 302
    assert "Il vous en reste 9" in text(client.get("/console/"))
    client.post("/auth/logout")
    portal_login(client)
    assert client.post("/console/securite/verification", {"code": codes[0]}).status_code == 200
    assert Event.objects.filter(tag="console.totp.recovery_used", target=referent).count() == 1


def test_guessing_codes_is_rate_limited(client, referent):
    enrol(referent)
    portal_login(client)
    statuses = [
        client.post("/console/securite/verification", {"code": f"{n:06d}"}).status_code
        for n in range(11)
    ]
    assert statuses[:10] == [200] * 10 and statuses[10] == 429
    assert "minute" in text(client.post("/console/securite/verification", {"code": totp_now()}))
