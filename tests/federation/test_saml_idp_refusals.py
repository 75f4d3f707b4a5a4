"""What the IdP refuses (issue 11 §1 and §4): a French page, never a 500, and no assertion."""

import base64
import zlib
from html import unescape
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from portail.audit.models import Event
from portail.federation.idp.models import ServiceProvider
from portail.typography import normalised
from tests.federation.conftest import make_sp
from tests.federation.saml_sp import TestSP, form_fields
from tests.federation.test_saml_idp_interop import follow_post_form, sp_initiated

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signing_sp(portal, tmp_path):
    sp, registered = make_sp(
        portal, tmp_path, name="signe", sign_requests=True, require_signed_requests=True
    )
    yield sp, registered
    sp.close()


def _deflated(xml: str) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml.encode()) + compressor.flush()).decode()


def _inflated(value: str) -> str:
    return zlib.decompress(base64.b64decode(value), -15).decode()


def no_assertion(page):
    assert 'name="SAMLResponse"' not in page.text
    assert not Event.objects.filter(tag="federation.saml.login").exists()


def test_unknown_sp(portal, tmp_path, pupil, browser_http):
    stranger = TestSP(tmp_path, portal + "/saml/metadata", name="inconnu")
    try:
        browser_http.log_in("lea.martin")
        _, page = sp_initiated(browser_http, stranger, BINDING_HTTP_REDIRECT)
        assert page.status_code == 403
        assert "n'est pas enregistrée auprès du portail" in normalised(unescape(page.text))
        no_assertion(page)
        assert Event.objects.filter(tag="federation.saml.unknown_sp").exists()
    finally:
        stranger.close()


def test_garbage_is_a_french_page(portal, browser_http):
    page = browser_http.http.get(portal + "/saml/sso?SAMLRequest=pas-du-saml", timeout=10)
    assert page.status_code == 400 and "illisible" in page.text
    page = browser_http.http.get(portal + "/saml/sso", timeout=10)
    assert page.status_code == 400 and "Aucune demande" in page.text
    page = browser_http.http.post(portal + "/saml/slo", data={"SAMLRequest": "%%%"}, timeout=10)
    assert page.status_code == 400


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_signed_requests_pass(signing_sp, pupil, browser_http, binding):
    sp, _ = signing_sp
    browser_http.log_in("lea.martin")
    request_id, page = sp_initiated(browser_http, sp, binding)
    response, _ = follow_post_form(sp, page, {request_id: "/"})
    assert response.get_identity()["GARPersonProfils"] == ["National_elv"]


def test_unsigned_request_when_signatures_are_required(signing_sp, pupil, browser_http):
    sp, _ = signing_sp
    browser_http.log_in("lea.martin")
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        destination = sp.client.metadata.single_sign_on_service(sp.idp_entity_id, binding)[0][
            "location"
        ]
        _, request = sp.client.create_authn_request(destination, sign=False)
        info = sp.client.apply_binding(binding, str(request), destination, "x", sign=False)
        if binding == BINDING_HTTP_REDIRECT:
            assert "Signature=" not in dict(info["headers"])["Location"]
            page = browser_http.http.get(dict(info["headers"])["Location"], timeout=10)
        else:
            action, fields = form_fields(info["data"])
            assert "Signature>" not in base64.b64decode(fields["SAMLRequest"]).decode()
            page = browser_http.http.post(action, data=fields, timeout=10)
        assert page.status_code == 400, page.text[:300]
        assert "invalide" in page.text or "doit signer" in page.text
        no_assertion(page)


def test_sha1_signature_is_refused(signing_sp, pupil, browser_http):
    from saml2.xmldsig import SIG_RSA_SHA1

    sp, _ = signing_sp
    browser_http.log_in("lea.martin")
    _, info = sp.client.prepare_for_authenticate(
        entityid=sp.idp_entity_id, binding=BINDING_HTTP_REDIRECT, sigalg=SIG_RSA_SHA1
    )
    page = browser_http.http.get(dict(info["headers"])["Location"], timeout=10)
    assert page.status_code == 400
    assert "SHA-1" in page.text
    no_assertion(page)


def test_tampered_redirect_request(signing_sp, pupil, browser_http):
    sp, _ = signing_sp
    browser_http.log_in("lea.martin")
    _, info = sp.authn_request(binding=BINDING_HTTP_REDIRECT)
    location = dict(info["headers"])["Location"]
    parts = urlsplit(location)
    query = dict(parse_qsl(parts.query))
    xml = _inflated(query["SAMLRequest"])
    tampered = xml.replace(sp.acs, sp.base + "/vol")  # the ACS, the signature kept
    assert tampered != xml
    query["SAMLRequest"] = _deflated(tampered)
    page = browser_http.http.get(
        f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}", timeout=10
    )
    assert page.status_code == 400
    assert "invalide" in page.text
    no_assertion(page)
    assert Event.objects.filter(tag="federation.saml.bad_request").exists()


def test_tampered_post_request(signing_sp, pupil, browser_http):
    sp, _ = signing_sp
    browser_http.log_in("lea.martin")
    _, info = sp.authn_request(binding=BINDING_HTTP_POST)
    action, fields = form_fields(info["data"])
    xml = base64.b64decode(fields["SAMLRequest"]).decode()
    assert "Signature>" in xml
    # The signed request, its ACS pointed elsewhere (the signature no longer matches).
    tampered = xml.replace(sp.acs, sp.base + "/vol")
    assert tampered != xml
    fields["SAMLRequest"] = base64.b64encode(tampered.encode()).decode()
    page = browser_http.http.post(action, data=fields, timeout=10)
    assert page.status_code == 400
    no_assertion(page)
    assert Event.objects.filter(tag="federation.saml.bad_request").exists()


def test_acs_not_in_metadata(gar, pupil, browser_http):
    sp, _ = gar
    browser_http.log_in("lea.martin")
    _, info = sp.client.prepare_for_authenticate(
        entityid=sp.idp_entity_id,
        binding=BINDING_HTTP_REDIRECT,
        assertion_consumer_service_url="https://pirate.example.test/acs",
    )
    page = browser_http.http.get(dict(info["headers"])["Location"], timeout=10)
    assert page.status_code == 400
    assert "adresse de retour" in page.text
    no_assertion(page)
    assert Event.objects.filter(tag="federation.saml.bad_acs").exists()


def test_disabled_provider_is_unknown(gar, pupil, browser_http):
    sp, registered = gar
    ServiceProvider.objects.filter(pk=registered.pk).update(enabled=False)
    browser_http.log_in("lea.martin")
    _, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
    assert page.status_code == 403
    no_assertion(page)


def test_a_pending_request_is_used_once(gar, pupil, browser_http):
    sp, _ = gar
    browser_http.log_in("lea.martin")
    request_id, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
    follow_post_form(sp, page, {request_id: "/"})
    again = browser_http.http.get(page.url, timeout=10)
    assert again.status_code == 400
    assert "déjà servi" in again.text
