"""Single logout (issue 11 §1): the portal's logout reaches the providers, and SP-initiated SLO."""

import re
from html import unescape

import pytest
from saml2 import BINDING_HTTP_REDIRECT
from saml2.samlp import STATUS_SUCCESS
from saml2.xmldsig import SIG_RSA_SHA256

from portail.audit.models import Event
from portail.federation.idp.models import SamlSession
from tests.federation.conftest import make_sp
from tests.federation.saml_sp import form_fields
from tests.federation.test_saml_idp_interop import follow_post_form, sp_initiated

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_sps(portal, tmp_path):
    one, _ = make_sp(portal, tmp_path, name="manuel", label="Manuel")
    two, _ = make_sp(portal, tmp_path, name="atlas", label="Atlas")
    yield one, two
    one.close()
    two.close()


def logged_in_at(browser, sps):
    """Log in, then open each provider; {sp: (name_id, session_index)}."""
    browser.log_in("lea.martin")
    sessions = {}
    for sp in sps:
        request_id, page = sp_initiated(browser, sp, BINDING_HTTP_REDIRECT)
        response, _ = follow_post_form(sp, page, {request_id: "/"})
        sessions[sp] = (
            response.assertion.subject.name_id.text,
            response.assertion.authn_statement[0].session_index,
        )
    return sessions


def frames_of(page):
    return [unescape(u) for u in re.findall(r'<iframe[^>]*src="([^"]+)"', page.text)]


def test_logging_out_of_the_portal_ends_the_saml_sessions(two_sps, pupil, browser_http):
    sessions = logged_in_at(browser_http, two_sps)
    portal = browser_http.portal
    page = browser_http.http.post(
        portal + "/auth/logout",
        data={"csrfmiddlewaretoken": browser_http.csrf()},
        headers={"Referer": portal + "/"},
        timeout=10,
    )
    # Instead of the redirect to the login page: a page that loads one LogoutRequest per
    # provider (front channel), then moves on to the login page.
    assert page.status_code == 200
    assert "Déconnexion en cours" in page.text
    assert 'href="/auth/login"' in page.text
    frames = frames_of(page)
    assert len(frames) == 2
    csp = page.headers["Content-Security-Policy"]
    for sp in two_sps:
        assert sp.base in csp  # frame-src for these providers only
    for url in frames:  # what the browser does with the frames
        browser_http.http.get(url, timeout=10)
    for sp in two_sps:
        assert len(sp.logout_requests) == 1
        received = sp.logout_requests[0]
        assert received["valid"], received  # signature checked by pysaml2 against the metadata
        assert received["sigalg"] == SIG_RSA_SHA256
        name_id, session_index = sessions[sp]
        assert received["name_id"] == name_id
        assert received["session_indexes"] == [session_index]
    assert not SamlSession.objects.exists()
    assert Event.objects.filter(tag="federation.saml.logout_sent").count() == 2
    # The portal session is over.
    home = browser_http.http.get(portal + "/", timeout=10, allow_redirects=False)
    assert home.status_code == 302 and "/auth/login" in home.headers["Location"]


def test_a_logout_without_saml_sessions_is_the_usual_redirect(portal, pupil, browser_http):
    browser_http.log_in("lea.martin")
    answer = browser_http.http.post(
        portal + "/auth/logout",
        data={"csrfmiddlewaretoken": browser_http.csrf()},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302


def sp_logout_request(sp, name_id, session_index, *, sign=True):
    from saml2.saml import NameID

    destination = next(
        iter(
            sp.client.metadata.single_logout_service(
                sp.idp_entity_id, BINDING_HTTP_REDIRECT, "idpsso"
            )
        )
    )["location"]
    _, request = sp.client.create_logout_request(
        destination,
        sp.idp_entity_id,
        name_id=NameID(format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", text=name_id),
        session_indexes=[session_index],
        sign=False,
    )
    info = sp.client.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(request),
        destination,
        "au-revoir",
        sign=sign,
        sigalg=SIG_RSA_SHA256,
    )
    return dict(info["headers"])["Location"]


def test_sp_initiated_single_logout(two_sps, pupil, browser_http):
    manuel, atlas = two_sps
    sessions = logged_in_at(browser_http, two_sps)
    page = browser_http.http.get(sp_logout_request(manuel, *sessions[manuel]), timeout=10)
    # The other provider is told in a frame; the initiator gets its LogoutResponse after.
    assert page.status_code == 200
    frames = frames_of(page)
    assert len(frames) == 1 and frames[0].startswith(atlas.slo)
    for url in frames:
        browser_http.http.get(url, timeout=10)
    assert atlas.logout_requests[0]["valid"]
    assert manuel.logout_requests == []
    next_url = unescape(re.search(r'href="([^"]+)" data-saml-next', page.text).group(1))
    assert next_url.startswith(manuel.slo)
    query = dict(re.findall(r"[?&]([^=&]+)=([^&]*)", next_url))
    from urllib.parse import unquote

    response = manuel.client.parse_logout_request_response(
        unquote(query["SAMLResponse"]), BINDING_HTTP_REDIRECT
    )
    assert response.response.status.status_code.value == STATUS_SUCCESS
    assert unquote(query["RelayState"]) == "au-revoir"
    assert query["SigAlg"] and query["Signature"]
    assert Event.objects.filter(tag="federation.saml.logout", target=pupil).exists()
    home = browser_http.http.get(browser_http.portal + "/", timeout=10, allow_redirects=False)
    assert home.status_code == 302


def test_an_unsigned_logout_request_is_refused(two_sps, pupil, browser_http):
    manuel, _ = two_sps
    sessions = logged_in_at(browser_http, two_sps)
    page = browser_http.http.get(
        sp_logout_request(manuel, *sessions[manuel], sign=False), timeout=10
    )
    assert page.status_code == 400
    assert "déconnexion de cette ressource est invalide" in page.text
    home = browser_http.http.get(browser_http.portal + "/", timeout=10, allow_redirects=False)
    assert home.status_code == 200  # still logged in


__all__ = ["form_fields"]


def test_a_provider_with_a_post_only_slo_service_is_told_too(portal, tmp_path, pupil, browser_http):
    from saml2 import BINDING_HTTP_POST

    sp, _ = make_sp(portal, tmp_path, name="postonly", slo_binding=BINDING_HTTP_POST)
    try:
        sessions = logged_in_at(browser_http, [sp])
        page = browser_http.http.post(
            portal + "/auth/logout",
            data={"csrfmiddlewaretoken": browser_http.csrf()},
            timeout=10,
        )
        frames = frames_of(page)
        assert len(frames) == 1 and frames[0].startswith(portal + "/saml/slo/envoi/")
        assert portal in page.headers["Content-Security-Policy"].split("frame-src")[1]
        frame = browser_http.http.get(frames[0], timeout=10)
        assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in frame.headers["Content-Security-Policy"]
        action, fields = form_fields(frame.text)
        assert action == sp.slo
        browser_http.http.post(action, data=fields, timeout=10)
        received = sp.logout_requests[0]
        assert received["valid"], received  # XML signature checked against the metadata
        assert received["name_id"] == sessions[sp][0]
        assert received["session_indexes"] == [sessions[sp][1]]
        # The token names one session's logout, for two minutes: a forged one is refused.
        forged = browser_http.http.get(frames[0][:-3] + "xyz", timeout=10)
        assert forged.status_code == 400
    finally:
        sp.close()


def test_the_frames_come_before_the_leaving_page_for_educonnect_or_franceconnect(rf, db):
    """A session opened through ÉduConnect (or FranceConnect) logs out through a « leaving »
    page towards its logout there, not a redirect: the providers' frames must not be dropped
    (the pupil's whole journey in Chromium: tests/e2e/test_federation_journeys_browser.py)."""
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    from portail.federation.idp.middleware import FrontChannelLogoutMiddleware
    from portail.federation.idp.signals import FRONT_CHANNEL_ATTRIBUTE
    from portail.federation.login.hooks import leaving_page

    away = "https://educonnect.example.test/slo?SAMLRequest=abc&Signature=xyz"
    frame = "https://manuel.example.test/slo?SAMLRequest=def"
    request = rf.post("/auth/logout")
    request.user, request.session = AnonymousUser(), SessionStore()

    def logout_view(request):
        frames = [{"url": frame, "origins": ["https://manuel.example.test"], "loads": 1}]
        setattr(request, FRONT_CHANNEL_ATTRIBUTE, frames)
        return leaving_page(request, away, "ÉduConnect", "Déconnexion")

    response = FrontChannelLogoutMiddleware(logout_view)(request)
    page = response.content.decode()
    assert "Déconnexion en cours" in page
    assert frames_of(type("P", (), {"text": page})) == [frame]
    next_url = unescape(re.search(r'href="([^"]+)" data-saml-next', page).group(1))
    assert next_url == away
    assert response._csp_update == {"frame-src": ["https://manuel.example.test"]}

    # Without frames, the leaving page is left as it is.
    plain = FrontChannelLogoutMiddleware(
        lambda request: leaving_page(request, away, "ÉduConnect", "Déconnexion")
    )(rf.post("/auth/logout"))
    assert "Déconnexion en cours" not in plain.content.decode()
