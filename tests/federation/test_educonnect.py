"""Login with ÉduConnect: the portal as SAML SP against pysaml2's IdP (issue 11, §2 and §4).

Each response is made and signed by a real pysaml2 IdP with xmlsec1, and posted to the ACS the
way a browser does; each refusal is one check of pysaml2 or of the replay table.
"""

import base64
import copy
import html

import pytest
from lxml import etree

from portail.accounts.models import Profile, State
from portail.audit.models import Event
from portail.federation.login import educonnect
from portail.federation.login.models import SeenAssertion
from portail.typography import normalised
from tests.federation.saml_idp import EduConnectIdP, moving_on, portal_sp_metadata
from tests.helpers import account

BASE = "https://ent.example.test"
ACS = BASE + "/federation/educonnect/acs"
SP_ENTITY = BASE + "/federation/educonnect/metadata"
IDP_BASE = "https://educonnect.example.test"


OTHER_SP = "https://another-sp.example/sp"


def sp_metadata(settings, entity=SP_ENTITY):
    return portal_sp_metadata(
        BASE, settings.PORTAIL_EDUCONNECT_KEY, settings.PORTAIL_EDUCONNECT_CERT, entity
    )


@pytest.fixture
def idp(educonnect_settings, settings, saml_keys):
    idp = EduConnectIdP(
        saml_keys, IDP_BASE, [sp_metadata(settings), sp_metadata(settings, OTHER_SP)]
    )
    educonnect_settings(idp)
    return idp


@pytest.fixture
def pupil(school):
    user = account("lea.martin", "Léa", "Martin", "", [school], profile=Profile.ELEVE)
    user.external_source, user.external_id = "aaf", "AAF-1234567"
    user.save()
    return user


def start(client, next_url=""):
    response = client.post("/federation/educonnect/login", {"next": next_url, "remember": "on"})
    location = moving_on(response)
    assert location.startswith(IDP_BASE + "/sso?SAMLRequest=")
    assert "Signature=" in location  # the AuthnRequest is signed
    return location


def post(client, xml):
    return client.post(ACS.removeprefix(BASE), {"SAMLResponse": EduConnectIdP.encode(xml)})


JOINTURE = {"FrEduCtRefId": ["AAF-1234567"], "sn": ["Martin"], "givenName": ["Léa"]}


def test_the_button_shows_only_when_configured(client, idp, settings):
    assert "Se connecter avec ÉduConnect" in client.get("/auth/login").content.decode()
    settings.PORTAIL_EDUCONNECT_METADATA = ""
    assert "ÉduConnect" not in client.get("/auth/login").content.decode()
    assert client.get("/federation/educonnect/metadata").status_code == 404


def test_sp_metadata(client, idp):
    response = client.get("/federation/educonnect/metadata")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'entityID="https://ent.example.test/federation/educonnect/metadata"' in text
    assert ACS in text and 'AuthnRequestsSigned="true"' in text


def test_pupil_logs_in_by_jointure(client, idp, pupil):
    request_id = idp.request_id(start(client, "/compte/"))
    response = post(client, idp.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY))
    assert response.status_code == 302 and response["Location"] == "/compte/"
    assert client.get("/").context["user"] == pupil
    event = Event.objects.filter(tag="account.login").latest("id")
    assert event.target_id == pupil.pk
    assert event.data["method"] == "educonnect" and event.data["remember"] is True
    # Remember-me as with a password: a persistent session.
    assert client.session.get_expire_at_browser_close() is False


def test_pending_account_needs_no_activation_code(client, idp, pupil):
    pupil.state = State.PENDING
    pupil.set_unusable_password()
    pupil.save()
    request_id = idp.request_id(start(client))
    response = post(client, idp.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY))
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_matched_by_jointure_never_by_name(client, idp, pupil):
    request_id = idp.request_id(start(client))
    stranger = {"FrEduCtRefId": ["AAF-9999999"], "sn": ["Martin"], "givenName": ["Léa"]}
    response = post(client, idp.response(request_id, stranger, acs=ACS, audience=SP_ENTITY))
    assert response.status_code == 403
    page = normalised(html.unescape(response.content.decode()))
    assert "ne correspond à aucun compte de l'ENT" in page and "référent ENT" in page
    assert "Aucun compte n'a été créé" in page
    assert client.get("/").status_code == 302  # not logged in
    assert Event.objects.filter(tag="federation.educonnect.no_account").exists()


def test_blocked_account_is_refused(client, idp, pupil):
    pupil.state = State.BLOCKED
    pupil.save()
    request_id = idp.request_id(start(client))
    response = post(client, idp.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY))
    assert response.status_code == 403
    assert "bloqué votre accès" in response.content.decode()


def refused(client, response, because):
    assert response.status_code == 400, response.status_code
    assert "La connexion avec ÉduConnect n'a pas abouti" in normalised(
        html.unescape(response.content.decode())
    )
    assert client.get("/").status_code == 302
    reason = Event.objects.filter(tag="federation.educonnect.refused").latest("id").data["reason"]
    assert because in reason, reason


def test_unsigned_response_is_refused(client, idp, pupil):
    request_id = idp.request_id(start(client))
    xml = idp.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY, sign_assertion=False)
    refused(client, post(client, xml), "Neither the response nor the assertions are signed")


def test_response_signed_by_another_key_is_refused(client, idp, pupil, saml_keys, settings):
    impostor = EduConnectIdP(saml_keys, IDP_BASE, sp_metadata(settings), name="impostor")
    request_id = idp.request_id(start(client))
    xml = impostor.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY)
    refused(client, post(client, xml), "Failed to verify signature")


def test_response_from_an_unknown_idp_is_refused(client, idp, pupil, saml_keys, settings):
    other = EduConnectIdP(
        saml_keys, "https://other-idp.example.test", sp_metadata(settings), name="other"
    )
    request_id = idp.request_id(start(client))
    xml = other.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY)
    refused(client, post(client, xml), "MissingKey: https://other-idp.example.test/idp")


def test_wrong_audience_is_refused(client, idp, pupil):
    request_id = idp.request_id(start(client))
    xml = idp.response(request_id, JOINTURE, acs=ACS, audience=OTHER_SP)
    refused(client, post(client, xml), "AudienceRestrictions conditions not satisfied")


def test_expired_assertion_is_refused(client, educonnect_settings, settings, saml_keys, pupil):
    stale = EduConnectIdP(saml_keys, IDP_BASE, sp_metadata(settings), lifetime_seconds=-600)
    educonnect_settings(stale)
    request_id = stale.request_id(start(client))
    xml = stale.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY)
    refused(client, post(client, xml), "Condition not OK")


def test_response_to_another_request_is_refused(client, idp, pupil):
    idp.request_id(start(client))
    xml = idp.response("id-never-sent", JOINTURE, acs=ACS, audience=SP_ENTITY)
    refused(client, post(client, xml), "Unsolicited response: id-never-sent")


def test_response_without_request_is_refused(client, idp, pupil):
    xml = idp.response("id-never-sent", JOINTURE, acs=ACS, audience=SP_ENTITY)
    # No session cookie came with the POST (as from a cross-site form with SameSite=Lax): our
    # page posts it again same-site; nothing was checked or consumed yet.
    relay = post(client, xml)
    assert relay.status_code == 200 and 'name="same_site"' in relay.content.decode()
    assert not SeenAssertion.objects.exists()
    again = client.post(
        ACS.removeprefix(BASE), {"SAMLResponse": EduConnectIdP.encode(xml), "same_site": "1"}
    )
    refused(client, again, "no AuthnRequest outstanding in this session")


def test_replayed_assertion_is_refused(client, idp, pupil):
    request_id = idp.request_id(start(client))
    xml = idp.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY)
    facts = educonnect.check_response(EduConnectIdP.encode(xml), request_id)
    assert SeenAssertion.objects.filter(assertion_id=facts["assertion_id"]).exists()
    with pytest.raises(educonnect.Refused, match="replay"):
        educonnect.check_response(EduConnectIdP.encode(xml), request_id)


def test_replay_through_the_acs(client, idp, pupil):
    request_id = idp.request_id(start(client))
    xml = idp.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY)
    assert post(client, xml).status_code == 302
    client.post("/auth/logout")
    idp.request_id(start(client))  # a new login in the same browser: the old answer is stale
    refused(client, post(client, xml), "Unsolicited response")


def test_signature_wrapping_is_refused(client, idp, pupil, school):
    """XSW: a second, unsigned assertion naming another person, next to the signed one."""
    victim = account("prof.durand", "Paul", "Durand", "", [school], profile=Profile.ENSEIGNANT)
    victim.external_source, victim.external_id = "aaf", "AAF-VICTIM"
    victim.save()
    request_id = idp.request_id(start(client))
    xml = idp.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY)
    root = etree.fromstring(xml.encode())
    ns = {
        "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
        "ds": "http://www.w3.org/2000/09/xmldsig#",
    }
    signed = root.find("saml:Assertion", ns)
    forged = copy.deepcopy(signed)
    forged.set("ID", "id-forged")
    for signature in forged.findall("ds:Signature", ns):
        forged.remove(signature)
    for value in forged.iterfind(".//saml:AttributeValue", ns):
        if value.text == "AAF-1234567":
            value.text = "AAF-VICTIM"
    signed.addprevious(forged)
    refused(client, post(client, etree.tostring(root).decode()), "Invalid number of assertions")
    assert not Event.objects.filter(tag="account.login", target=victim).exists()


def test_garbage_is_refused(client, idp, db):
    start(client)
    garbage = base64.b64encode(b"<x/>").decode()
    refused(client, client.post(ACS.removeprefix(BASE), {"SAMLResponse": garbage}), "Unknown")
    start(client)
    refused(client, client.post(ACS.removeprefix(BASE), {"SAMLResponse": "%%%"}), "Error")


def test_cas_continuation_and_single_logout(client, idp, pupil):
    """From a CAS application: ÉduConnect login, then the service ticket; the portal's logout
    sends a signed LogoutRequest to ÉduConnect's SLO endpoint; its answer lands on the login page."""
    from portail.sso.models import Application

    Application.objects.create(
        name="Vie scolaire",
        short_label="VS",
        url="https://notes.example.test/",
        kind=Application.Kind.CAS,
        cas_service_patterns="https://notes.example.test/",
    )
    next_url = "/cas/login?service=https%3A%2F%2Fnotes.example.test%2F"
    request_id = idp.request_id(start(client, next_url))
    response = post(client, idp.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY))
    assert response["Location"] == next_url
    response = client.get(next_url)
    assert response.status_code == 302
    assert response["Location"].startswith("https://notes.example.test/?ticket=ST-")

    location = moving_on(client.post("/auth/logout"))
    assert location.startswith(IDP_BASE + "/slo?SAMLRequest=") and "Signature=" in location
    from urllib.parse import parse_qs, urlsplit

    from saml2 import BINDING_HTTP_REDIRECT

    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    request = idp.server.parse_logout_request(
        query["SAMLRequest"],
        BINDING_HTTP_REDIRECT,
        relay_state=query.get("RelayState"),
        sigalg=query["SigAlg"],
        signature=query["Signature"],
    )
    assert request.message.issuer.text == SP_ENTITY
    assert request.message.session_index  # the session ÉduConnect opened
    assert client.get("/").status_code == 302  # logged out here already

    answer = idp.server.create_logout_response(request.message, [BINDING_HTTP_REDIRECT], sign=False)
    info = idp.server.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(answer),
        BASE + "/federation/educonnect/slo",
        response=True,
        sign=True,
    )
    back = dict(info["headers"])["Location"].removeprefix(BASE)
    assert client.get(back)["Location"] == "/auth/login"


def test_logout_asked_by_educonnect_ends_the_portal_session(client, idp, pupil):
    from urllib.parse import urlsplit

    from saml2 import BINDING_HTTP_REDIRECT, saml

    request_id = idp.request_id(start(client))
    post(client, idp.response(request_id, JOINTURE, acs=ACS, audience=SP_ENTITY))
    assert client.get("/").status_code == 200
    state = client.session["federation_login"]
    _, request = idp.server.create_logout_request(
        BASE + "/federation/educonnect/slo",
        SP_ENTITY,
        name_id=saml.name_id_from_string(state["name_id"]),
        session_indexes=[state["session_index"]],
        sign=False,
    )
    info = idp.server.apply_binding(
        BINDING_HTTP_REDIRECT, str(request), BASE + "/federation/educonnect/slo", sign=True
    )
    response = client.get(dict(info["headers"])["Location"].removeprefix(BASE))
    assert response.status_code == 302
    assert response["Location"].startswith(IDP_BASE + "/slo?SAMLResponse=")
    assert urlsplit(response["Location"]).query.count("Signature=") == 1
    assert client.get("/").status_code == 302  # logged out of the portal
    assert Event.objects.filter(tag="account.logout", target=pupil).exists()
