"""The CAS REST protocol (Apereo CAS REST API), for the services an administrator enables for it.

    POST   /cas/v1/tickets          username, password  -> 201, Location: /cas/v1/tickets/TGT-…
    POST   /cas/v1/tickets/TGT-…    service             -> 200, the service ticket as plain text
    DELETE /cas/v1/tickets/TGT-…                        -> 200 (and single logout of its tickets)

A program without a browser (a mobile app, a synchronisation script of a school application)
obtains service tickets with the user's password. It gets no bypass of the front door: the
password goes through `accounts.services.authenticate` (address budgets, account lockout of
untrusted devices, one Argon2 whatever the account), a proof-of-work challenge cannot be
solved here so it is a refusal, and the endpoint exists only while some enabled CAS service
has `cas_rest_enabled` (404 otherwise: no password oracle for nothing).

The ticket-granting ticket is a portal session of its own (the CAS server's ticket-granting
session is the portal session, see services.py): "TGT-" + the session key, stored only under
the sessions' keyed hash, living PORTAIL_CAS_REST_TGT_SECONDS from the password at most (never
extended by use), and ended like any session by a block, a password change or a logout. Its
service tickets are ordinary tickets (single use, PORTAIL_CAS_TICKET_SECONDS), issued only for
services with REST enabled, validated by /cas/serviceValidate as usual. Every step is audited.
"""

import time
from datetime import UTC, datetime, timedelta
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from portail.accounts import services as accounts
from portail.accounts.models import State
from portail.audit.services import record
from portail.security.sessions import STARTED_AT, session_reference

from . import services
from .models import Application, SingleLogoutRecord

TGT_PREFIX = "TGT-"
# Marks a session that is a REST ticket-granting ticket (never a browser's).
REST_SESSION_KEY = "sso_cas_rest"
_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _text(status: int, message: str, **headers) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    response["Cache-Control"] = "no-store"
    return response


def rest_enabled() -> bool:
    return Application.objects.filter(
        enabled=True, kind=Application.Kind.CAS, cas_rest_enabled=True
    ).exists()


def _rest_application(service: str) -> Application | None:
    app = services.find_cas_application(service)
    return app if app is not None and app.cas_rest_enabled else None


def _session_store(session_key=None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def create_ticket_granting_ticket(request, user) -> str:
    """A new TGT for a user whose password was just checked."""
    store = _session_store()
    now = time.time()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = _BACKEND
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[STARTED_AT] = now
    store[services.AUTH_TIME_KEY] = now
    store[REST_SESSION_KEY] = True
    # A fixed end (a datetime, not an age): issuing tickets never extends it.
    store.set_expiry(
        datetime.fromtimestamp(now, tz=UTC)
        + timedelta(seconds=settings.PORTAIL_CAS_REST_TGT_SECONDS)
    )
    store.create()
    record("sso.cas.rest.tgt", request=request, target=user)
    return TGT_PREFIX + store.session_key


def _load(tgt: str):
    """(store, user) of a live TGT, or (None, None)."""
    if not tgt.startswith(TGT_PREFIX):
        return None, None
    store = _session_store(tgt[len(TGT_PREFIX) :])
    if not store.get(REST_SESSION_KEY):  # unknown, expired, or a browser's session key
        return None, None
    started = store.get(services.AUTH_TIME_KEY) or 0
    if time.time() >= started + settings.PORTAIL_CAS_REST_TGT_SECONDS:
        store.delete()
        return None, None
    # Django's own check: the session's user, still with the same password and session stamp
    # (a block or a password change ends the TGT like any session).
    user = get_user(SimpleNamespace(session=store))
    if not user.is_authenticated or not user.is_active or user.state != State.ACTIVE:
        store.delete()
        return None, None
    return store, user


def grant_service_ticket(request, tgt: str, service: str) -> str:
    """A service ticket for `service` from a TGT; raises TicketNotFound, ServiceRefused…"""
    store, user = _load(tgt)
    if store is None:
        raise TicketNotFound
    app = _rest_application(service)
    if app is None:
        record("sso.cas.rest.refused", request=request, target=user, service=service[:300])
        raise ServiceRefused
    if not app.is_available_to(user):
        record("sso.cas.rest.refused", request=request, target=user, application=app.name)
        raise services.ApplicationNotAvailable
    reference = session_reference(store)
    ticket = services._issue(
        app,
        user,
        service,
        session_key=reference,
        from_credentials=False,
        remembered=False,
        authenticated_at=store.get(services.AUTH_TIME_KEY),
    )
    if app.cas_single_logout:
        sent = store.get(services.SLO_SESSION_KEY, [])
        sent.append([ticket, service])
        store[services.SLO_SESSION_KEY] = sent[-services.MAX_SLO_ENTRIES :]
        store.save()
        SingleLogoutRecord.objects.create(
            user=user, session_key=reference, ticket=ticket, service=service
        )
    record("sso.cas.rest.ticket", request=request, target=user, application=app.name)
    return ticket


def destroy_ticket_granting_ticket(request, tgt: str) -> bool:
    """End the TGT and tell the services it opened (single logout); False if it was not live."""
    store, user = _load(tgt)
    if store is None:
        return False
    services.single_logout(store)
    store.delete()
    record("sso.cas.rest.logout", request=request, target=user)
    return True


class TicketNotFound(Exception):
    pass


class ServiceRefused(accounts.DomainError):
    message = "Ce service n’est pas autorisé à utiliser le protocole CAS REST de l’ENT."


# --- Views ---------------------------------------------------------------------------------------


@csrf_exempt  # a program's API: no cookie is read, the credentials are in the body
@require_POST
def tickets(request):
    if not rest_enabled():
        return _text(404, "Le protocole CAS REST n’est pas activé.")
    username = request.POST.get("username", "")
    password = request.POST.get("password", "")
    if not username or not password:
        return _text(400, "Les paramètres username et password sont obligatoires.")
    service = request.POST.get("service", "")
    if service and _rest_application(service) is None:
        return _text(400, ServiceRefused.message)
    try:
        user = accounts.authenticate(request, username, password)
    except (accounts.AccountLocked, accounts.ChallengeRequired) as exc:
        # A program cannot solve the browser's proof of work: it waits like a locked device.
        return _text(429, exc.message, Retry_After=str(settings.PORTAIL_RETRY_AFTER_SECONDS))
    except accounts.DomainError as exc:
        return _text(401, exc.message)
    if isinstance(user, accounts.ActivationRequired):
        return _text(
            401,
            "Ce compte n’est pas encore activé : faites votre première connexion sur le portail.",
        )
    tgt = create_ticket_granting_ticket(request, user)
    location = f"{settings.PORTAIL_BASE_URL}/cas/v1/tickets/{tgt}"
    # Apereo's answer: the Location header, and a form for a human looking at it.
    body = (
        "<!DOCTYPE html><html><head><title>201 Created</title></head><body><h1>TGT Created</h1>"
        f'<form action="{location}" method="POST">Service:<input type="text" name="service" '
        'value=""><br><input type="submit" value="Submit"></form></body></html>'
    )
    response = HttpResponse(body, status=201, content_type="text/html; charset=utf-8")
    response["Location"] = location
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # see tickets()
@require_http_methods(["POST", "DELETE"])
def ticket(request, tgt):
    if request.method == "DELETE":
        if not destroy_ticket_granting_ticket(request, tgt):
            return _text(404, "Ticket inconnu ou expiré.")
        return _text(200, tgt)
    service = request.POST.get("service", "")
    if not service:
        return _text(400, "Le paramètre service est obligatoire.")
    try:
        st = grant_service_ticket(request, tgt, service)
    except TicketNotFound:
        return _text(404, "Ticket inconnu ou expiré.")
    except ServiceRefused as exc:
        return _text(400, exc.message)
    except accounts.DomainError as exc:
        return _text(403, exc.message)
    return _text(200, st)
