"""The portal as SAML 2.0 IdP (issue 11 §1), against pysaml2's SP over HTTP (live server)."""

import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from portail.audit.models import Event
from portail.federation.idp.models import PersonIdentifier
from tests.federation.saml_sp import form_fields

pytestmark = pytest.mark.django_db(transaction=True)


def follow_post_form(sp, page, outstanding):
    action, fields = form_fields(page.text)
    assert action == sp.acs
    return sp.consume(fields["SAMLResponse"], outstanding), fields


def sp_initiated(browser, sp, binding):
    request_id, info = sp.authn_request(binding=binding)
    if binding == BINDING_HTTP_REDIRECT:
        location = dict(info["headers"])["Location"]
        page = browser.http.get(location, timeout=10)
    else:
        action, fields = form_fields(info["data"])
        page = browser.http.post(action, data=fields, timeout=10)
    return request_id, page


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_sp_initiated_login_carries_the_gar_attributes(gar, pupil, browser_http, binding):
    sp, registered = gar
    request_id, page = sp_initiated(browser_http, sp, binding)
    # Not logged in yet: the portal's login form, then the answer.
    assert "/auth/login" in page.url
    page = browser_http.submit_login(page, "lea.martin")
    assert page.status_code == 200, page.text[:500]
    response, fields = follow_post_form(sp, page, {request_id: "/manuel"})
    assert fields["RelayState"] == "/manuel"
    ava = response.get_identity()
    assert ava["GARPersonIdentifiant"] == [str(PersonIdentifier.objects.get(user=pupil).value)]
    assert ava["idEnt"] == ["ENT-IDF"]
    assert ava["GARStructureUAI"] == ["0751234A"]
    assert ava["GARPersonProfils"] == ["National_elv"]
    assert ava["GARPersonNom"] == ["Martin"]
    assert ava["GARPersonPrenom"] == ["Léa"]
    assert "GARPersonMail" not in ava  # only on purpose
    name_id = response.assertion.subject.name_id
    assert name_id.format.endswith(":persistent")
    assert name_id.text not in (pupil.identifier, str(pupil.pk))
    assert Event.objects.filter(tag="federation.saml.login", target=pupil).count() == 1

    # Signed with RSA-SHA256 and SHA-256 digests, never SHA-1.
    from tests.federation.saml_sp import decoded

    xml = decoded(fields["SAMLResponse"])
    assert "xmldsig-more#rsa-sha256" in xml and "xmlenc#sha256" in xml
    assert "rsa-sha1" not in xml and "xmldsig#sha1" not in xml


def test_second_login_is_straight_through_and_identifiers_are_stable(gar, pupil, browser_http):
    sp, _ = gar
    browser_http.log_in("lea.martin")
    request_id, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
    first, _ = follow_post_form(sp, page, {request_id: "/"})
    # A rename changes neither the GAR identifier nor the persistent NameID.
    pupil.last_name = "Martin-Durand"
    pupil.save()
    request_id, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
    second, _ = follow_post_form(sp, page, {request_id: "/"})
    assert (
        second.get_identity()["GARPersonIdentifiant"]
        == first.get_identity()["GARPersonIdentifiant"]
    )
    assert second.assertion.subject.name_id.text == first.assertion.subject.name_id.text
    assert second.get_identity()["GARPersonNom"] == ["Martin-Durand"]


def test_the_sp_refuses_a_replayed_assertion(gar, pupil, browser_http):
    from tests.federation.saml_sp import Replayed

    sp, _ = gar
    browser_http.log_in("lea.martin")
    request_id, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
    _, fields = follow_post_form(sp, page, {request_id: "/"})
    with pytest.raises(Replayed):
        sp.consume(fields["SAMLResponse"], {request_id: "/"})
