"""The CAS REST protocol (/cas/v1/tickets), driven over HTTP with requests; tickets validated by
python-cas, a client nobody here wrote."""

import pytest
import requests
from cas import CASClient
from django.contrib.sessions.models import Session

from portail.accounts.models import State
from portail.audit.models import Event
from portail.ops.admission import redact_path
from portail.sso.models import Application
from portail.typography import normalise
from tests.conftest import STRONG_PASSWORD

from .conftest import CAS_SERVICE


@pytest.fixture
def rest_app(cas_app):
    cas_app.cas_rest_enabled = True
    cas_app.save()
    return cas_app


@pytest.fixture
def other_app(db):
    return Application.objects.create(
        name="Manuels",
        short_label="MA",
        url="https://manuels.example.test/",
        kind=Application.Kind.CAS,
        cas_service_patterns="https://manuels.example.test/",
    )


def new_tgt(live_server, identifier="jean.dupont", password=STRONG_PASSWORD):
    return requests.post(
        live_server.url + "/cas/v1/tickets",
        data={"username": identifier, "password": password},
        allow_redirects=False,
        timeout=10,
    )


def tgt_url(live_server, settings, response):
    assert response.status_code == 201, response.text
    location = response.headers["Location"]
    assert location.startswith(settings.PORTAIL_BASE_URL + "/cas/v1/tickets/TGT-")
    return live_server.url + location[len(settings.PORTAIL_BASE_URL) :]


def service_ticket(url, service=CAS_SERVICE):
    return requests.post(url, data={"service": service}, timeout=10)


def test_endpoint_does_not_exist_until_a_service_enables_it(live_server, cas_app, active_user):
    response = new_tgt(live_server)
    assert response.status_code == 404
    assert "pas activé" in response.text
    # No password was checked: nothing in the journal.
    assert not Event.objects.filter(tag__startswith="account.login").exists()


def test_password_gives_a_tgt_whose_service_ticket_python_cas_validates(
    live_server, settings, rest_app, active_user
):
    url = tgt_url(live_server, settings, new_tgt(live_server))
    response = service_ticket(url)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    ticket = response.text
    assert ticket.startswith("ST-") and len(ticket) > 32

    client = CASClient(version=3, service_url=CAS_SERVICE, server_url=live_server.url + "/cas/")
    user, attributes, _ = client.verify_ticket(ticket)
    assert user == "jean.dupont"
    assert attributes["displayName"] == "Jean Dupont"
    assert attributes["uai"] == "0751234A"
    # Single use, like any ticket.
    assert client.verify_ticket(ticket)[0] is None
    # The TGT gives more tickets while it lives.
    assert service_ticket(url).text.startswith("ST-")
    tags = list(Event.objects.filter(target=active_user).values_list("tag", flat=True))
    assert "sso.cas.rest.tgt" in tags and tags.count("sso.cas.rest.ticket") == 2


def test_wrong_password_is_refused_in_french_and_counts_towards_the_lockout(
    live_server, settings, rest_app, active_user
):
    response = new_tgt(live_server, password="pas le bon mot de passe")
    assert response.status_code == 401
    assert normalise(response.text) == "L'identifiant ou le mot de passe est incorrect."
    assert Event.objects.filter(tag="account.login.failed", target=active_user).count() == 1
    # The same lockout as the login page (CNIL 2022-100): after the failures, even the right
    # password waits.
    for _ in range(settings.PORTAIL_LOGIN_FAILURES_BEFORE_DELAY):
        new_tgt(live_server, password="pas le bon mot de passe")
    response = new_tgt(live_server)
    assert response.status_code == 429
    assert "veuillez patienter" in response.text
    assert response.headers["Retry-After"]


def test_missing_parameters_are_a_clear_400(live_server, settings, rest_app, active_user):
    response = requests.post(live_server.url + "/cas/v1/tickets", data={"username": "x"}, timeout=5)
    assert response.status_code == 400
    assert "obligatoires" in response.text
    url = tgt_url(live_server, settings, new_tgt(live_server))
    response = requests.post(url, data={}, timeout=5)
    assert response.status_code == 400
    assert "service est obligatoire" in response.text


def test_no_ticket_for_a_service_without_rest_or_unregistered(
    live_server, settings, rest_app, other_app, active_user
):
    url = tgt_url(live_server, settings, new_tgt(live_server))
    for service in ("https://manuels.example.test/login", "https://evil.example.test/"):
        response = service_ticket(url, service)
        assert response.status_code == 400
        assert "protocole CAS REST" in response.text


def test_no_ticket_for_an_application_the_profile_may_not_use(
    live_server, settings, rest_app, active_user
):
    url = tgt_url(live_server, settings, new_tgt(live_server))
    rest_app.profiles = ["eleve"]
    rest_app.save()
    response = service_ticket(url)
    assert response.status_code == 403
    assert "ne donne pas accès" in response.text


def test_pending_account_gets_no_tgt_with_its_activation_code(live_server, rest_app, pending_pupil):
    user, code = pending_pupil
    response = new_tgt(live_server, user.identifier, code)
    assert response.status_code == 401
    assert "pas encore activé" in response.text


def test_tgt_is_stored_hashed_and_never_logged(live_server, settings, rest_app, active_user):
    url = tgt_url(live_server, settings, new_tgt(live_server))
    key = url.rsplit("TGT-", 1)[1]
    assert not Session.objects.filter(session_key=key).exists()
    assert Session.objects.count() == 1
    path = "/cas/v1/tickets/TGT-" + key
    assert key not in redact_path(path)


def test_tgt_dies_after_its_lifetime_whatever_its_use(live_server, settings, rest_app, active_user):
    url = tgt_url(live_server, settings, new_tgt(live_server))
    assert service_ticket(url).status_code == 200
    settings.PORTAIL_CAS_REST_TGT_SECONDS = 0  # its lifetime counts from the password
    response = service_ticket(url)
    assert response.status_code == 404
    assert response.text == "Ticket inconnu ou expiré."
    assert not Session.objects.exists()


def test_blocking_the_account_ends_its_tgt(live_server, settings, rest_app, active_user):
    url = tgt_url(live_server, settings, new_tgt(live_server))
    active_user.state = State.BLOCKED
    active_user.save()
    assert service_ticket(url).status_code == 404


def test_ending_all_sessions_of_the_account_ends_its_tgt(
    live_server, settings, rest_app, active_user
):
    url = tgt_url(live_server, settings, new_tgt(live_server))
    active_user.end_all_sessions()  # what a reset, a block or « déconnecter partout » do
    active_user.save()
    assert service_ticket(url).status_code == 404


def test_password_change_ends_its_tgt(live_server, settings, rest_app, active_user):
    url = tgt_url(live_server, settings, new_tgt(live_server))
    active_user.set_password("Un tout autre mot de passe 2026")
    active_user.save()
    assert service_ticket(url).status_code == 404


def test_a_browser_session_key_is_no_tgt(live_server, client, rest_app, active_user):
    client.force_login(active_user)
    key = client.session.session_key
    response = service_ticket(live_server.url + "/cas/v1/tickets/TGT-" + key)
    assert response.status_code == 404


def test_delete_ends_the_tgt_and_logs_the_services_out(
    live_server, settings, recorder, rest_app, active_user
):
    service = recorder.url + "/moodle/login/index.php"
    rest_app.cas_service_patterns += "\n" + recorder.url + "/moodle/"
    rest_app.save()
    url = tgt_url(live_server, settings, new_tgt(live_server))
    ticket = service_ticket(url, service).text
    response = requests.delete(url, timeout=10)
    assert response.status_code == 200
    # CAS 3.0 §2.3.3: the service hears a logoutRequest naming its ticket.
    assert len(recorder.requests) == 1
    assert ticket in recorder.requests[0]["form"]["logoutRequest"][0]
    assert service_ticket(url).status_code == 404
    assert requests.delete(url, timeout=10).status_code == 404
    assert Event.objects.filter(tag="sso.cas.rest.logout", target=active_user).exists()


def test_the_password_post_waits_in_the_login_lane(settings):
    # One Argon2 per request, like the login form: the admission layer's per-process lane.
    from portail.ops.admission import Admission

    admission = Admission(None, settings=settings)
    assert admission.is_expensive({"method": "POST", "path": "/cas/v1/tickets"})
