"""The CAS server, driven by python-cas (a client nobody here wrote) against a live server."""

from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from cas import CASClient
from django.utils import timezone

from portail.accounts.models import State
from portail.audit.models import Event
from portail.sso.models import Application, ServiceTicket
from tests.conftest import STRONG_PASSWORD

from .conftest import CAS_SERVICE


def ticket_from(response):
    assert response.status_code == 302, response.status_code
    location = response["Location"]
    assert location.startswith(CAS_SERVICE), location
    return parse_qs(urlsplit(location).query)["ticket"][0]


def cas_client(live_server, version, service=CAS_SERVICE, **kwargs):
    return CASClient(
        version=version, service_url=service, server_url=live_server.url + "/cas/", **kwargs
    )


@pytest.fixture
def logged_in(client, active_user, school_class):
    active_user.classes.set([school_class])
    client.force_login(active_user)
    return client


def test_anonymous_user_is_sent_to_the_portal_login_then_back_with_a_ticket(
    client, cas_app, active_user, live_server
):
    login_url = cas_client(live_server, 3).get_login_url()
    cas_path = login_url[len(live_server.url) :]
    response = client.get(cas_path)
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/login?next=")
    response = client.post(
        response["Location"], {"identifier": "jean.dupont", "password": STRONG_PASSWORD}
    )
    assert response["Location"] == cas_path
    ticket = ticket_from(client.get(cas_path))
    assert ticket.startswith("ST-") and len(ticket) >= 32

    user, attributes, _ = cas_client(live_server, 3).verify_ticket(ticket)
    assert user == "jean.dupont"
    assert attributes["firstName"] == "Jean"
    assert attributes["lastName"] == "Dupont"
    assert attributes["displayName"] == "Jean Dupont"
    assert attributes["entProfile"] == "parent"
    assert attributes["uai"] == "0751234A"
    assert "email" not in attributes  # not in this service's release list


def test_cas2_client_validates_and_reads_attributes(logged_in, cas_app, live_server):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    user, attributes, pgtiou = cas_client(live_server, 2).verify_ticket(ticket)
    assert user == "jean.dupont"
    assert attributes["classes"] == "2nde 3"
    assert pgtiou is None


def test_cas1_validate_answers_yes_then_no(logged_in, cas_app, live_server):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    assert cas_client(live_server, 1).verify_ticket(ticket)[0] == "jean.dupont"
    assert cas_client(live_server, 1).verify_ticket(ticket)[0] is None


def test_email_is_released_only_where_the_administrator_allows_it(logged_in, cas_app, live_server):
    cas_app.released_attributes = ["identifier", "email"]
    cas_app.save()
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    _, attributes, _ = cas_client(live_server, 3).verify_ticket(ticket)
    attributes.pop("isFromNewLogin")
    attributes.pop("longTermAuthenticationRequestTokenUsed")
    attributes.pop("authenticationDate")
    assert attributes == {"identifier": "jean.dupont", "email": "jean.dupont@example.org"}


def test_regex_pattern_admits_its_service(logged_in, cas_app, live_server):
    service = "https://pronote.example.test/42/eleve.html"
    response = logged_in.get("/cas/login", {"service": service})
    ticket = parse_qs(urlsplit(response["Location"]).query)["ticket"][0]
    assert cas_client(live_server, 3, service=service).verify_ticket(ticket)[0] == "jean.dupont"


@pytest.mark.parametrize(
    "service",
    [
        "https://evil.example.test/",
        "https://notes.example.test.evil.example/",  # prefix without a path boundary
        "https://pronote.example.test/42/eleve.html.evil",  # regex must match whole
    ],
)
def test_unknown_service_gets_a_french_page_and_never_a_ticket(logged_in, cas_app, service):
    response = logged_in.get("/cas/login", {"service": service})
    assert response.status_code == 403
    assert "Ce service n'est pas autorisé" in unescape(response.content.decode())
    assert not ServiceTicket.objects.exists()
    assert Event.objects.filter(tag="sso.cas.unknown_service").exists()


def test_ticket_is_single_use(logged_in, cas_app, live_server):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    assert cas_client(live_server, 3).verify_ticket(ticket)[0] == "jean.dupont"
    assert cas_client(live_server, 3).verify_ticket(ticket)[0] is None


def test_expired_ticket_is_refused(logged_in, cas_app, live_server, settings):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    ServiceTicket.objects.update(
        created_at=timezone.now() - timedelta(seconds=settings.PORTAIL_CAS_TICKET_SECONDS + 1)
    )
    assert cas_client(live_server, 3).verify_ticket(ticket)[0] is None


def test_ticket_for_another_service_is_refused_and_burnt(logged_in, cas_app, client):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    other = "https://notes.example.test/other"
    response = client.get("/cas/serviceValidate", {"ticket": ticket, "service": other})
    assert 'code="INVALID_SERVICE"' in response.content.decode()
    response = client.get("/cas/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE})
    assert 'code="INVALID_TICKET"' in response.content.decode()


def test_missing_parameters_are_an_invalid_request(client, db):
    response = client.get("/cas/p3/serviceValidate", {"service": CAS_SERVICE})
    assert 'code="INVALID_REQUEST"' in response.content.decode()


def test_json_format(logged_in, cas_app, client):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    answer = client.get(
        "/cas/p3/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE, "format": "JSON"}
    ).json()
    success = answer["serviceResponse"]["authenticationSuccess"]
    assert success["user"] == "jean.dupont"
    assert success["attributes"]["uai"] == ["0751234A"]
    failure = client.get(
        "/cas/p3/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE, "format": "JSON"}
    ).json()["serviceResponse"]["authenticationFailure"]
    assert failure["code"] == "INVALID_TICKET"


def test_blocked_account_cannot_get_a_ticket(logged_in, cas_app, active_user):
    active_user.state = State.BLOCKED
    active_user.end_all_sessions()
    active_user.save()
    response = logged_in.get("/cas/login", {"service": CAS_SERVICE})
    assert response.status_code == 302
    assert response["Location"].startswith("/auth/login")
    assert not ServiceTicket.objects.exists()


def test_blocked_between_ticket_and_validation_is_refused(
    logged_in, cas_app, active_user, live_server
):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    active_user.state = State.BLOCKED
    active_user.save()
    assert cas_client(live_server, 3).verify_ticket(ticket)[0] is None


def test_application_outside_the_users_profile_is_refused(logged_in, cas_app):
    cas_app.profiles = ["eleve"]
    cas_app.save()
    response = logged_in.get("/cas/login", {"service": CAS_SERVICE})
    assert response.status_code == 403
    assert "ne donne pas accès" in unescape(response.content.decode())


def test_renew_forces_the_password_again(logged_in, cas_app, client, live_server):
    # A ticket from the single sign-on session does not satisfy renew at validation.
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    response = client.get(
        "/cas/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE, "renew": "true"}
    )
    assert 'code="INVALID_TICKET_SPEC"' in response.content.decode()

    renew_client = cas_client(live_server, 3, renew=True)
    cas_path = renew_client.get_login_url()[len(live_server.url) :]
    response = logged_in.get(cas_path)
    assert response["Location"].startswith("/auth/login?next=")  # logged in, yet asked again
    response = logged_in.post(
        response["Location"], {"identifier": "jean.dupont", "password": STRONG_PASSWORD}
    )
    ticket = ticket_from(logged_in.get(response["Location"]))
    response = client.get(
        "/cas/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE, "renew": "true"}
    )
    assert "<cas:user>jean.dupont</cas:user>" in response.content.decode()


def test_gateway_returns_to_the_service_without_ticket(client, cas_app):
    response = client.get("/cas/login", {"service": CAS_SERVICE, "gateway": "true"})
    assert response["Location"] == CAS_SERVICE


def test_logout_redirects_only_to_a_registered_service(logged_in, cas_app):
    response = logged_in.get("/cas/logout", {"service": CAS_SERVICE})
    assert response["Location"] == CAS_SERVICE
    assert "_auth_user_id" not in logged_in.session
    response = logged_in.get("/cas/logout", {"service": "https://evil.example.test/"})
    assert response.status_code == 200
    assert "Vous êtes déconnecté" in unescape(response.content.decode())


def test_portal_logout_sends_the_logout_request_to_each_service(logged_in, cas_app, recorder):
    slo_app = Application.objects.create(
        name="Cahier de textes",
        short_label="CT",
        url=recorder.url + "/app/",
        kind=Application.Kind.CAS,
        cas_service_patterns=recorder.url + "/app/",
    )
    service = recorder.url + "/app/login"
    response = logged_in.get("/cas/login", {"service": service})
    ticket = parse_qs(urlsplit(response["Location"]).query)["ticket"][0]
    assert slo_app.pk

    logged_in.post("/auth/logout")

    posts = [r for r in recorder.requests if r["method"] == "POST"]
    assert len(posts) == 1 and posts[0]["path"] == "/app/login"
    logout_request = posts[0]["form"]["logoutRequest"][0]
    # python-cas's own SLO check: the SessionIndex is the ticket it validated.
    assert CASClient(version=3).verify_logout_request(logout_request, ticket)


def test_proxy_granting_ticket_needs_https_callback(logged_in, cas_app, client):
    cas_app.cas_allow_proxy = True
    cas_app.save()
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    response = client.get(
        "/cas/serviceValidate",
        {"ticket": ticket, "service": CAS_SERVICE, "pgtUrl": "http://notes.example.test/pgt"},
    )
    assert 'code="INVALID_PROXY_CALLBACK"' in response.content.decode()


def test_proxy_tickets_through_a_callback(logged_in, recorder, live_server, settings):
    # CAS 2.0 proxying: the callback is plain HTTP on 127.0.0.1, allowed by a test-only setting.
    settings.PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = True
    Application.objects.create(
        name="Portail documentaire",
        short_label="PD",
        url=recorder.url + "/proxy/",
        kind=Application.Kind.CAS,
        cas_service_patterns=recorder.url + "/proxy/",
        cas_allow_proxy=True,
    )
    Application.objects.create(
        name="Manuels",
        short_label="MN",
        url="https://manuels.example.test/",
        kind=Application.Kind.CAS,
        cas_service_patterns="https://manuels.example.test/",
    )
    service = recorder.url + "/proxy/login"
    callback = recorder.url + "/proxy/pgt-callback"
    response = logged_in.get("/cas/login", {"service": service})
    ticket = parse_qs(urlsplit(response["Location"]).query)["ticket"][0]

    proxy = cas_client(live_server, 2, service=service, proxy_callback=callback)
    user, _, pgt_iou = proxy.verify_ticket(ticket)
    assert user == "jean.dupont" and pgt_iou.startswith("PGTIOU-")
    delivered = recorder.requests[-1]["query"]
    assert delivered["pgtIou"] == [pgt_iou]
    pgt = delivered["pgtId"][0]

    target = cas_client(live_server, 3, service="https://manuels.example.test/doc")
    proxy_ticket = target.get_proxy_ticket(pgt)
    assert proxy_ticket.startswith("PT-")

    # A proxy ticket is not accepted by serviceValidate, but is by proxyValidate.
    target.url_suffix = "p3/proxyValidate"
    user, attributes, _ = target.verify_ticket(proxy_ticket)
    assert user == "jean.dupont" and attributes["identifier"] == "jean.dupont"
    xml = target.get_verification_response(proxy_ticket).decode()
    assert "INVALID_TICKET" in xml  # single use

    proxy_ticket = target.get_proxy_ticket(pgt)
    target.url_suffix = "p3/serviceValidate"
    assert target.verify_ticket(proxy_ticket)[0] is None


def test_proxy_refuses_an_unregistered_target(client, db):
    response = client.get("/cas/proxy", {"pgt": "PGT-nope", "targetService": "https://x.test/"})
    assert 'code="INVALID_TICKET"' in response.content.decode()
    response = client.get("/cas/proxy", {"pgt": "PGT-nope"})
    assert 'code="INVALID_REQUEST"' in response.content.decode()


def test_first_ticket_after_the_login_form_comes_through_a_page_of_its_own(
    client, cas_app, active_user
):
    # Browsers apply the login page's CSP form-action 'self' to the whole redirect chain of the
    # form's POST; the ticket's redirect to another origin must start a navigation of its own.
    response = client.get("/cas/login", {"service": CAS_SERVICE})
    login_url = response["Location"]
    response = client.post(login_url, {"identifier": "jean.dupont", "password": STRONG_PASSWORD})
    response = client.get(response["Location"], HTTP_REFERER="http://testserver" + login_url)
    assert response.status_code == 200
    page = unescape(response.content.decode())
    assert '<meta http-equiv="refresh" content="0;url=' + CAS_SERVICE + "?ticket=ST-" in page
    assert "Continuer vers Vie scolaire" in page
    # Later tiles are plain redirects.
    response = client.get("/cas/login", {"service": CAS_SERVICE}, HTTP_REFERER="http://testserver/")
    assert response.status_code == 302


def test_clear_sso_tickets_command_deletes_expired_tickets_only(logged_in, cas_app, settings):
    from io import StringIO

    from django.core.management import call_command

    ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    ServiceTicket.objects.filter(pk=ServiceTicket.objects.first().pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.PORTAIL_CAS_TICKET_SECONDS + 1)
    )
    out = StringIO()
    call_command("clear_sso_tickets", stdout=out)
    assert "1 ticket(s)" in out.getvalue()
    assert ServiceTicket.objects.count() == 1


def _second_try(client, ticket):
    response = client.get("/cas/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE})
    return response.content.decode()


def test_failed_validation_on_a_bad_pgt_url_burns_the_ticket(logged_in, cas_app, client):
    # CAS 3.0 §3.1.1: the ticket is invalidated whatever the validation's outcome.
    cas_app.cas_allow_proxy = True
    cas_app.save()
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    response = client.get(
        "/cas/serviceValidate",
        {"ticket": ticket, "service": CAS_SERVICE, "pgtUrl": "http://notes.example.test/pgt"},
    )
    assert 'code="INVALID_PROXY_CALLBACK"' in response.content.decode()
    assert 'code="INVALID_TICKET"' in _second_try(client, ticket)


def test_validation_without_service_burns_the_ticket(logged_in, cas_app, client):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    response = client.get("/cas/serviceValidate", {"ticket": ticket})
    assert 'code="INVALID_REQUEST"' in response.content.decode()
    assert 'code="INVALID_TICKET"' in _second_try(client, ticket)


def test_proxy_ticket_sent_to_service_validate_is_refused_and_burnt(
    logged_in, cas_app, active_user, client
):
    from portail.sso import services

    pt = services._issue(
        cas_app, active_user, CAS_SERVICE, kind=ServiceTicket.Kind.PROXY, proxies=["https://p"]
    )
    assert 'code="INVALID_TICKET"' in _second_try(client, pt)
    response = client.get("/cas/proxyValidate", {"ticket": pt, "service": CAS_SERVICE})
    assert 'code="INVALID_TICKET"' in response.content.decode()


def test_tickets_use_only_the_characters_cas_allows(cas_app, active_user, settings):
    import re

    from portail.sso import services

    # CAS 3.0 §3.7: [A-Za-z0-9-] only; §3.1.2: at least 32 characters (here 256 bits of hex).
    allowed = re.compile(r"(ST|PT|PGT|PGTIOU)-[A-Za-z0-9-]{64,}")
    tickets = [services._new_ticket(p) for p in ("ST", "PT", "PGT", "PGTIOU") for _ in range(250)]
    tickets += [services._issue(cas_app, active_user, CAS_SERVICE) for _ in range(20)]
    assert all(allowed.fullmatch(t) for t in tickets), [t for t in tickets if "_" in t][:3]


def _p3(client, ticket, **extra):
    return client.get(
        "/cas/p3/serviceValidate", {"ticket": ticket, "service": CAS_SERVICE, **extra}
    ).content.decode()


def test_remembered_session_and_new_login_are_told_to_the_service(client, cas_app, active_user):
    # CAS 3.0 §4.1.3: longTermAuthenticationRequestTokenUsed / isFromNewLogin.
    response = client.get("/cas/login", {"service": CAS_SERVICE})
    response = client.post(
        response["Location"],
        {"identifier": "jean.dupont", "password": STRONG_PASSWORD, "remember": "on"},
    )
    body = _p3(client, ticket_from(client.get(response["Location"])))
    assert "<cas:isFromNewLogin>true</cas:isFromNewLogin>" in body
    assert (
        "<cas:longTermAuthenticationRequestTokenUsed>true"
        "</cas:longTermAuthenticationRequestTokenUsed>" in body
    )
    # A second application, later, from the same session: not a new login.
    body = _p3(client, ticket_from(client.get("/cas/login", {"service": CAS_SERVICE})))
    assert "<cas:isFromNewLogin>false</cas:isFromNewLogin>" in body


def test_session_without_remember_me_is_not_long_term(client, cas_app, active_user):
    client.post("/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD})
    body = _p3(client, ticket_from(client.get("/cas/login", {"service": CAS_SERVICE})))
    assert (
        "<cas:longTermAuthenticationRequestTokenUsed>false"
        "</cas:longTermAuthenticationRequestTokenUsed>" in body
    )


def test_service_not_allowed_to_proxy_asking_a_pgt_is_unauthorized(
    logged_in, cas_app, client, settings
):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    body = _p3(client, ticket, pgtUrl="https://notes.example.test/pgt")
    assert 'code="UNAUTHORIZED_SERVICE_PROXY"' in body


def test_logout_ignores_the_url_parameter(logged_in, cas_app):
    # CAS 3.0 §2.3.1: only "service" redirects.
    response = logged_in.get("/cas/logout", {"url": CAS_SERVICE})
    assert response.status_code == 200
    assert "_auth_user_id" not in logged_in.session


@pytest.mark.parametrize("path", ["/cas/p3/serviceValidate", "/cas/proxyValidate"])
def test_unsupported_format_is_an_invalid_request(logged_in, cas_app, client, path):
    ticket = ticket_from(logged_in.get("/cas/login", {"service": CAS_SERVICE}))
    body = client.get(path, {"ticket": ticket, "service": CAS_SERVICE, "format": "YAML"})
    assert 'code="INVALID_REQUEST"' in body.content.decode()


@pytest.mark.parametrize("fmt", ["XML", "JSON"])
def test_unexpected_error_is_a_cas_internal_error_not_an_html_500(
    logged_in, cas_app, client, monkeypatch, fmt
):
    from portail.sso import services

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "_consume", broken)
    client.raise_request_exception = False
    response = client.get(
        "/cas/p3/serviceValidate", {"ticket": "ST-x", "service": CAS_SERVICE, "format": fmt}
    )
    assert response.status_code == 200
    assert "INTERNAL_ERROR" in response.content.decode()
    assert "database went away" not in response.content.decode()
