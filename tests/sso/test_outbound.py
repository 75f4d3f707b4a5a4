"""Calls out of the portal (PGT callbacks, single logout, back-channel logout) cannot be aimed
at the portal's own network, nor bounced there by a redirect. No network: literal IPs only."""

import pytest
from django.core.exceptions import ValidationError

from portail.sso import outbound
from portail.sso.models import Application


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104  (an address checked, not bound)
        "fe80::1",
        "fc00::1",
        "240.0.0.1",
        "::ffff:10.0.0.1",
        "100.64.0.1",
    ],
)
def test_private_link_local_and_reserved_addresses_are_refused(address, settings):
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = True  # loopback only, not these
    assert not outbound.address_allowed(address)


def test_loopback_is_refused_unless_the_test_setting_allows_it(settings, recorder):
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = False
    settings.DEBUG = False
    assert outbound.call(recorder.url + "/callback") is None
    assert outbound.call(recorder.url + "/slo", form={"logoutRequest": "x"}) is None
    assert recorder.requests == []
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = True
    assert outbound.call(recorder.url + "/callback") == 200
    assert len(recorder.requests) == 1


def test_a_link_local_literal_is_never_contacted(settings):
    # The cloud metadata address: refused before any packet leaves.
    assert outbound.call("http://169.254.169.254/latest/meta-data/") is None
    assert outbound.call("https://[fd00::1]/x", form={"a": "b"}) is None


def test_redirects_are_not_followed(recorder):
    recorder.redirect_to = "http://127.0.0.1:1/internal"
    assert outbound.call(recorder.url + "/callback") == 302
    assert [r["path"] for r in recorder.requests] == []  # the redirecting receiver recorded none


def test_only_http_and_https(recorder):
    assert outbound.call("file:///etc/passwd") is None
    assert outbound.call("ftp://127.0.0.1/x") is None


def test_backchannel_logout_uri_must_be_https(db, settings):
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = False
    settings.DEBUG = False
    app = Application(
        name="Moodle",
        short_label="MO",
        url="https://moodle.example.test/",
        kind=Application.Kind.CAS,
        cas_service_patterns="https://moodle.example.test/",
        oidc_backchannel_logout_uri="http://moodle.example.test/logout",
    )
    with pytest.raises(ValidationError, match="https://"):
        app.full_clean()
    app.oidc_backchannel_logout_uri = "https://moodle.example.test/logout"
    app.full_clean()


def test_pgt_callback_to_a_private_address_gets_no_pgt(client, active_user, db, settings):
    from portail.sso.models import ProxyGrantingTicket

    # A CAS client allowed to proxy names an https callback inside the portal's network.
    Application.objects.create(
        name="Proxy",
        short_label="PX",
        url="https://10.0.0.5/",
        kind=Application.Kind.CAS,
        cas_service_patterns="https://10.0.0.5/",
        cas_allow_proxy=True,
    )
    client.force_login(active_user)
    location = client.get("/cas/login", {"service": "https://10.0.0.5/app"})["Location"]
    ticket = location.split("ticket=")[1]
    body = client.get(
        "/cas/serviceValidate",
        {"ticket": ticket, "service": "https://10.0.0.5/app", "pgtUrl": "https://10.0.0.5/pgt"},
    ).content.decode()
    assert "<cas:user>jean.dupont</cas:user>" in body
    assert "proxyGrantingTicket" not in body
    assert not ProxyGrantingTicket.objects.exists()
