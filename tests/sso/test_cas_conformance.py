"""CAS by the book (issue 9): answers valid against the protocol's own XSD, validation by POST,
single escaping, dot segments in service URLs; and the outbound guard's IPv6 embeddings."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cas import CASClient
from django.test import Client as DjangoClient
from lxml import etree

from portail.sso import outbound
from portail.sso.models import Application

from .conftest import CAS_SERVICE

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("cas-3.0.3.xsd"))))
NS = {"cas": "http://www.yale.edu/tp/cas"}


@pytest.fixture
def logged_in(client, active_user, school_class):
    active_user.classes.set([school_class])
    client.force_login(active_user)
    return client


def ticket_for(browser, service=CAS_SERVICE):
    response = browser.get("/cas/login", {"service": service})
    assert response.status_code == 302, response.content[:300]
    return parse_qs(urlsplit(response["Location"]).query)["ticket"][0]


def valid(body: bytes):
    document = etree.fromstring(body)
    assert SCHEMA.validate(document), SCHEMA.error_log
    return document


@pytest.mark.parametrize("endpoint", ["serviceValidate", "p3/serviceValidate", "p3/proxyValidate"])
def test_authentication_success_validates_against_the_cas_3_schema(
    logged_in, cas_app, client, endpoint
):
    cas_app.released_attributes = ["identifier", "displayName", "uai", "classes", "email"]
    cas_app.save()
    ticket = ticket_for(logged_in)
    response = client.get(f"/cas/{endpoint}", {"ticket": ticket, "service": CAS_SERVICE})
    document = valid(response.content)
    attributes = document.find("cas:authenticationSuccess/cas:attributes", NS)
    names = [etree.QName(child).localname for child in attributes]
    assert names[:3] == [
        "authenticationDate",
        "longTermAuthenticationRequestTokenUsed",
        "isFromNewLogin",
    ]
    assert "identifier" in names


def test_authentication_failures_validate_and_are_escaped_once(client, cas_app):
    ticket = "ST-<&>" + "x" * 20
    response = client.get("/cas/p3/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE})
    document = valid(response.content)
    failure = document.find("cas:authenticationFailure", NS)
    assert failure.get("code") == "INVALID_TICKET"
    # Parsed once, the text is the ticket as sent, not "&lt;" left over from a second escape.
    assert "ST-<&>" in failure.text and "&lt;" not in failure.text
    as_json = client.get(
        "/cas/p3/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE, "format": "JSON"}
    ).json()
    assert "ST-<&>" in as_json["serviceResponse"]["authenticationFailure"]["description"]


@pytest.mark.parametrize("endpoint", ["serviceValidate", "p3/serviceValidate", "p3/proxyValidate"])
def test_validation_may_be_posted_by_the_application(logged_in, cas_app, live_server, endpoint):
    ticket = ticket_for(logged_in)
    # A server-to-server call: no cookie, no CSRF token (requests against the live server).
    response = requests.post(
        f"{live_server.url}/cas/{endpoint}",
        data={"ticket": ticket, "service": CAS_SERVICE},
        timeout=5,
    )
    assert response.status_code == 200, response.text[:300]
    document = valid(response.content)
    assert document.findtext("cas:authenticationSuccess/cas:user", namespaces=NS) == "jean.dupont"


def test_cas1_validate_may_be_posted(logged_in, cas_app, live_server):
    ticket = ticket_for(logged_in)
    response = requests.post(
        f"{live_server.url}/cas/validate",
        data={"ticket": ticket, "service": CAS_SERVICE},
        timeout=5,
    )
    assert response.text == "yes\njean.dupont\n"


def test_cas_login_keeps_its_csrf_protection(db, active_user, cas_app):
    # Only the validation endpoints are exempt: /cas/login still answers GET only.
    browser = DjangoClient(enforce_csrf_checks=True)
    browser.force_login(active_user)
    assert browser.post("/cas/login", {"service": CAS_SERVICE}).status_code in (403, 405)


@pytest.mark.parametrize(
    "service",
    [
        "https://notes.example.test/cas/../../other-app",
        "https://notes.example.test/../other-app",
        "https://notes.example.test/a/%2e%2e/%2E%2E/other-app",
        "https://notes.example.test/a%2f..%2f..%2fother",
        "https://notes.example.test/a/..%5c..%5cother",
        "https://notes.example.test/a\\..\\other",
    ],
)
def test_dot_segments_cannot_leave_a_path_prefix(logged_in, service):
    Application.objects.create(
        name="Cahier",
        short_label="CA",
        url="https://notes.example.test/cas/",
        kind=Application.Kind.CAS,
        cas_service_patterns="https://notes.example.test/cas/\nhttps://notes.example.test/a/",
    )
    response = logged_in.get("/cas/login", {"service": service})
    assert response.status_code == 403
    assert "ticket=" not in response.get("Location", "")


def test_dot_segments_that_stay_inside_the_prefix_are_still_admitted(logged_in, cas_app):
    service = "https://notes.example.test/cas/./callback/../callback"
    response = logged_in.get("/cas/login", {"service": service})
    assert response.status_code == 302 and "ticket=ST-" in response["Location"]
    assert response["Location"].startswith(service)  # the ticket goes to the URL as given


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:7f00::",
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254 (cloud metadata)
        "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
        "2002:c0a8:0101::1",  # 6to4 of 192.168.1.1
        "64:ff9b::7f00:1",  # NAT64 (RFC 6052) of 127.0.0.1
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::a00:1",
        "64:ff9b:1::a00:1",  # RFC 8215 local-use NAT64
        "::ffff:0:7f00:1",  # SIIT IPv4-translated 127.0.0.1
        "::ffff:0:a00:1",
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "::a9fe:a9fe",
    ],
)
def test_ipv6_forms_embedding_a_private_ipv4_are_refused(address, settings):
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = True
    assert not outbound.address_allowed(address)


@pytest.mark.parametrize("address", ["2002:808:808::1", "64:ff9b::808:808", "2a01:e0a::1"])
def test_ipv6_forms_of_public_addresses_stay_allowed(address):
    assert outbound.address_allowed(address)


# --- /samlValidate (CAS 3.0 §4.2), with python-cas's SAML 1.1 client ---


def saml_client(live_server, service=CAS_SERVICE):
    return CASClient(
        version="CAS_2_SAML_1_0", service_url=service, server_url=live_server.url + "/cas/"
    )


def test_saml_validate_answers_the_user_and_attributes(logged_in, cas_app, live_server):
    cas_app.released_attributes = ["identifier", "displayName", "uai"]
    cas_app.save()
    ticket = ticket_for(logged_in)
    user, attributes, _ = saml_client(live_server).verify_ticket(ticket)
    assert user == "jean.dupont"
    assert attributes["displayName"] == "Jean Dupont"
    assert attributes["uai"] == "0751234A"
    assert attributes["isFromNewLogin"] in ("true", "false")
    assert attributes["longTermAuthenticationRequestTokenUsed"] == "false"
    # Single use, like every CAS ticket.
    assert saml_client(live_server).verify_ticket(ticket)[0] is None


def test_saml_response_names_its_audience_and_authentication(logged_in, cas_app, live_server):
    ticket = ticket_for(logged_in)
    response = saml_client(live_server).fetch_saml_validation(ticket)
    document = etree.fromstring(response.content)
    saml = {
        "samlp": "urn:oasis:names:tc:SAML:1.0:protocol",
        "saml": "urn:oasis:names:tc:SAML:1.0:assertion",
    }
    answer = document.find(".//samlp:Response", saml)
    assert answer.get("Recipient") == CAS_SERVICE
    assert answer.find("samlp:Status/samlp:StatusCode", saml).get("Value") == "samlp:Success"
    assert document.findtext(".//saml:Audience", namespaces=saml) == CAS_SERVICE
    statement = document.find(".//saml:AuthenticationStatement", saml)
    assert statement.get("AuthenticationMethod") == "urn:oasis:names:tc:SAML:1.0:am:password"
    assert statement.get("AuthenticationInstant").endswith("Z")


def test_saml_validate_refuses_a_ticket_for_another_service(logged_in, cas_app, live_server):
    ticket = ticket_for(logged_in)
    other = saml_client(live_server, service="https://notes.example.test/other")
    response = other.fetch_saml_validation(ticket)
    assert b'Value="samlp:Responder"' in response.content
    assert b"INVALID_SERVICE" in response.content
    assert saml_client(live_server).verify_ticket(ticket)[0] is None  # burnt all the same


def test_saml_validate_refuses_entities_and_garbage_without_a_500(cas_app, live_server):
    url = live_server.url + "/cas/samlValidate?TARGET=" + CAS_SERVICE
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>'
    )
    for body in (bomb, b"not xml", b""):
        response = requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=5)
        assert response.status_code == 200
        assert b'Value="samlp:Requester"' in response.content
    assert requests.get(url, timeout=5).status_code == 405
