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


def test_idp_initiated_from_the_home_tile(gar, pupil, browser_http):
    sp, registered = gar
    registered.relay_state = "https://manuel.example.test/lecture"
    registered.save()
    browser_http.log_in("lea.martin")
    home = browser_http.http.get(browser_http.portal + "/", timeout=10)
    tile = f'href="/saml/initier/{registered.pk}"'
    assert tile in home.text and "Manuel numérique" in home.text
    page = browser_http.http.get(browser_http.portal + f"/saml/initier/{registered.pk}", timeout=10)
    # Unsolicited: no InResponseTo; the SP accepts it because it allows IdP-initiated SSO.
    response, fields = follow_post_form(sp, page, {})
    assert response.in_response_to is None
    assert fields["RelayState"] == "https://manuel.example.test/lecture"
    assert response.get_identity()["GARPersonProfils"] == ["National_elv"]
    event = Event.objects.get(tag="federation.saml.login", target=pupil)
    assert event.data["idp_initiated"] is True


def test_the_tile_is_not_shown_to_a_profile_that_may_not_use_it(gar, pupil, browser_http):
    _, registered = gar
    registered.profiles = ["enseignant"]
    registered.save()
    browser_http.log_in("lea.martin")
    home = browser_http.http.get(browser_http.portal + "/", timeout=10)
    assert f"/saml/initier/{registered.pk}" not in home.text
    page = browser_http.http.get(browser_http.portal + f"/saml/initier/{registered.pk}", timeout=10)
    assert page.status_code == 403
    assert "pas proposée à votre profil" in page.text


def test_a_refused_profile_gets_request_denied_at_the_sp(gar, pupil, browser_http):
    from saml2.response import StatusRequestDenied

    sp, registered = gar
    registered.profiles = ["enseignant"]
    registered.save()
    browser_http.log_in("lea.martin")
    request_id, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
    action, fields = form_fields(page.text)
    assert action == sp.acs
    with pytest.raises(StatusRequestDenied):
        sp.consume(fields["SAMLResponse"], {request_id: "/"})
    assert Event.objects.filter(tag="federation.saml.denied", target=pupil).exists()
    assert not Event.objects.filter(tag="federation.saml.login").exists()


def test_transient_name_id_and_encrypted_assertion(portal, tmp_path, pupil, browser_http):
    from tests.federation.conftest import make_sp

    sp, registered = make_sp(
        portal,
        tmp_path,
        name="chiffre",
        name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
        encrypt_assertions=True,
    )
    try:
        browser_http.log_in("lea.martin")
        ids = []
        for _ in range(2):
            request_id, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
            from tests.federation.saml_sp import decoded

            _, fields = form_fields(page.text)
            xml = decoded(fields["SAMLResponse"])
            assert "EncryptedAssertion" in xml and "GARPersonIdentifiant" not in xml
            response = sp.consume(fields["SAMLResponse"], {request_id: "/"})
            name_id = response.assertion.subject.name_id
            assert name_id.format.endswith(":transient")
            assert response.get_identity()["GARPersonNom"] == ["Martin"]
            ids.append(name_id.text)
        assert ids[0] != ids[1]
    finally:
        sp.close()


def test_two_providers_see_different_persistent_identifiers(portal, tmp_path, pupil, browser_http):
    from tests.federation.conftest import make_sp

    one, _ = make_sp(portal, tmp_path, name="un", label="Un")
    two, _ = make_sp(portal, tmp_path, name="deux", label="Deux")
    try:
        browser_http.log_in("lea.martin")
        subjects, gar_ids = [], []
        for sp in (one, two):
            request_id, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
            response, _ = follow_post_form(sp, page, {request_id: "/"})
            subjects.append(response.assertion.subject.name_id.text)
            gar_ids.append(response.get_identity()["GARPersonIdentifiant"])
        assert subjects[0] != subjects[1]  # pairwise NameID
        assert gar_ids[0] == gar_ids[1]  # the directory's identifier, the same everywhere
    finally:
        one.close()
        two.close()


def test_force_authn_asks_the_password_again(gar, pupil, browser_http):
    sp, _ = gar
    browser_http.log_in("lea.martin")
    request_id, info = sp.client.prepare_for_authenticate(
        entityid=sp.idp_entity_id, binding=BINDING_HTTP_REDIRECT, force_authn="true"
    )
    page = browser_http.http.get(dict(info["headers"])["Location"], timeout=10)
    assert "/auth/login" in page.url  # despite the session
    page = browser_http.submit_login(page, "lea.martin")
    response, _ = follow_post_form(sp, page, {request_id: "/"})
    assert response.get_identity()["GARPersonPrenom"] == ["Léa"]


def test_is_passive_without_a_session_answers_no_passive(gar, pupil, browser_http):
    from saml2.response import StatusNoPassive

    sp, _ = gar
    request_id, info = sp.client.prepare_for_authenticate(
        entityid=sp.idp_entity_id, binding=BINDING_HTTP_REDIRECT, is_passive="true"
    )
    page = browser_http.http.get(dict(info["headers"])["Location"], timeout=10)
    assert "/auth/login" not in page.url
    action, fields = form_fields(page.text)
    assert action == sp.acs
    with pytest.raises(StatusNoPassive):
        sp.consume(fields["SAMLResponse"], {request_id: "/"})


def test_the_sp_refuses_an_expired_assertion(gar, pupil, browser_http, settings):
    sp, _ = gar
    # The assertion's window already over when issued: the SP's time check must refuse it.
    settings.PORTAIL_SAML_ASSERTION_SECONDS = -120
    browser_http.log_in("lea.martin")
    request_id, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
    _, fields = form_fields(page.text)
    # pysaml2 says « Condition not OK » for Conditions/@NotOnOrAfter in the past.
    with pytest.raises(Exception, match="(?i)(condition not ok|expired|too old)"):
        sp.consume(fields["SAMLResponse"], {request_id: "/"})


def test_another_sp_refuses_an_assertion_meant_for_the_first(
    gar, portal, tmp_path, pupil, browser_http
):
    from tests.federation.conftest import make_sp

    sp, _ = gar
    other, _ = make_sp(portal, tmp_path, name="autre", label="Autre")
    try:
        browser_http.log_in("lea.martin")
        request_id, page = sp_initiated(browser_http, sp, BINDING_HTTP_REDIRECT)
        _, fields = form_fields(page.text)
        # Audience and Destination/Recipient name the first SP: the second refuses it.
        with pytest.raises(Exception):  # noqa: B017  (pysaml2 raises its own kinds)
            other.consume(fields["SAMLResponse"], {})
        assert sp.consume(fields["SAMLResponse"], {request_id: "/"}) is not None
    finally:
        other.close()
