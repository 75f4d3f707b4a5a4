"""Domain operations of single sign-on: which applications a user sees, and the CAS server.

Why our own CAS server rather than django-cas-server: that package brings its own user, session
and login models (its login form, its ticket-granting session, its federated users). Portail
already has its login (folded identifiers, activation codes, rate limits, remember-me, audit) and
its sessions (ended by session_stamp on block or reset); a second session model would need to be
kept in step with ours and could outlive a blocked account. The CAS protocol itself is small:
here the portal session is the ticket-granting session, and tickets are ours.

Tickets: "ST-"/"PT-"/"PGT-" + 256 bits from `secrets`, stored only as a keyed digest
(portail.security.tokens), single use (validation deletes the row in one atomic statement), valid
PORTAIL_CAS_TICKET_SECONDS (default 10 s). For single logout the portal session keeps the list of
(ticket, service) it handed out: the SAML SessionIndex must be the ticket itself, and a ticket in
that list is already consumed or expired, so it opens nothing. The same pairs are kept per user
(SingleLogoutRecord), so that blocking an account or resetting its password, which end sessions
without a logout, still notify the services. Every call out goes through `outbound` (no
redirects, no private or loopback targets).
"""

import json
import logging
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

from django.conf import settings
from django.db import connection, connections, router, transaction
from django.utils import timezone

from portail.accounts.models import State, User
from portail.accounts.services import DomainError
from portail.audit.services import record
from portail.security import tokens
from portail.security.sessions import session_reference

from . import outbound
from .models import Application, ProxyGrantingTicket, ServiceTicket, SingleLogoutRecord

log = logging.getLogger(__name__)

# Session keys.
SLO_SESSION_KEY = "sso_cas_tickets"  # [[ticket, service], ...] handed out in this session
AUTH_TIME_KEY = "sso_auth_time"  # when the password was last typed in this session
CREDENTIALS_ASKED_KEY = "sso_credentials_asked_at"  # when CAS sent the user to type it
LOGIN_FORM_KEY = "sso_login_form_at"  # a portal form just logged the user in
# A login POST that redirects to /cas/login or /o/authorize/ is one navigation with the final
# redirect to the application; Chromium and Firefox apply the login page's CSP form-action
# 'self' to that whole chain and block it. The first SSO answer after a login form is therefore a
# page that moves on by itself (meta refresh), a navigation of its own.
LOGIN_FORM_WINDOW_SECONDS = 120
MAX_SLO_ENTRIES = 100


class UnknownService(DomainError):
    message = (
        "Ce service n'est pas autorisé à utiliser l'authentification de l'ENT. "
        "Vérifiez l'adresse ou contactez l'administrateur de l'application."
    )


class ApplicationNotAvailable(DomainError):
    message = "Votre profil ou votre établissement ne donne pas accès à cette application."


class AccountNotActive(DomainError):
    message = "Votre compte ne permet pas d'accéder aux applications de l'ENT."


class CasError(Exception):
    """A protocol refusal, answered to the CAS client with its code (CAS 3.0 §2.5.3)."""

    def __init__(self, code: str, description: str):
        super().__init__(description)
        self.code = code
        self.description = description


@dataclass
class Validation:
    identifier: str
    attributes: dict
    pgt_iou: str | None = None
    proxies: list = field(default_factory=list)
    from_new_login: bool = False
    remembered: bool = False


# --- Home page ---------------------------------------------------------------------------------


def applications_for(user) -> list[Application]:
    """The tiles of the home page: enabled, for this profile, for one of the user's structures.

    Each gets `.icon`: the static path of its picture, portail/tiles/<sigle in lower case>.svg,
    when the deployment ships one; else the tile shows its sigle (short_label) as the icon.
    """
    tiles = visible_to(user, Application.objects.filter(enabled=True))
    for app in tiles:
        app.icon = tile_icon(app.short_label)
    return tiles


def visible_to(user, entries) -> list:
    """The entries (applications, SAML service providers: `profiles` and `structures` fields)
    this user may see: their profile is listed, and no structure is set or one is theirs."""
    mine = set(user.structures.values_list("pk", flat=True))
    return [
        entry
        for entry in entries.prefetch_related("structures")
        if user.profile in (entry.profiles or [])
        and (not entry.structures.all() or mine & {s.pk for s in entry.structures.all()})
    ]


@lru_cache(maxsize=256)
def tile_icon(short_label: str) -> str:
    from django.contrib.staticfiles import finders

    path = f"portail/tiles/{short_label.strip().lower()}.svg"
    return path if short_label.strip().isalnum() and finders.find(path) else ""


# --- Attributes (CAS 3.0 attributes and OIDC claims alike) -------------------------------------


# The SQL of the two many-to-many reads above, compiled by the ORM once per database connection
# rather than at every userinfo or validation (issue 9 §6: the compilation cost more than the
# statement). The user's primary key must be the only parameter, else the ORM is used each time.
_USER_VALUES_SQL = {}


def _user_values_sql(user, name, build, alias):
    key = (name, alias)
    if key not in _USER_VALUES_SQL:
        queryset = build()
        sql, params = queryset.query.get_compiler(queryset.db).as_sql()
        same = queryset.db == alias and tuple(params) == (user.pk,)
        _USER_VALUES_SQL[key] = sql if same else None


def _user_values(user, name, build) -> list:
    # The database the related manager reads from (Django's ManyRelatedManager uses this).
    alias = router.db_for_read(type(user), instance=user)
    _user_values_sql(user, name, build, alias)
    sql = _USER_VALUES_SQL[(name, alias)]
    if sql is None:
        return [value for (value,) in build()]
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [user.pk])
        return [value for (value,) in cursor.fetchall()]


def _user_value_lists(user, builds: dict) -> dict:
    """Several of the reads above in one statement on PostgreSQL: SELECT ARRAY(…), ARRAY(…), each
    subquery the ORM's own SQL with its ORDER BY (an ARRAY of a subquery keeps its order). One
    round trip and one cursor instead of one per attribute (userinfo and ticket issuance read
    « uai » and « classes »: issue 9 §6). Elsewhere, or when a read's SQL cannot be reused, one
    read per attribute as before."""
    alias = router.db_for_read(type(user), instance=user)
    if len(builds) > 1 and connections[alias].vendor == "postgresql":
        key = (tuple(builds), alias)
        if key not in _USER_VALUES_SQL:
            parts = []
            for name, build in builds.items():
                _user_values_sql(user, name, build, alias)
                parts.append(_USER_VALUES_SQL[(name, alias)])
            _USER_VALUES_SQL[key] = (
                "SELECT " + ", ".join(f"ARRAY({sql})" for sql in parts) if all(parts) else None
            )
        sql = _USER_VALUES_SQL[key]
        if sql is not None:
            with connections[alias].cursor() as cursor:
                cursor.execute(sql, [user.pk] * len(builds))
                row = cursor.fetchone()
            return {name: list(values) for name, values in zip(builds, row, strict=True)}
    return {name: _user_values(user, name, build) for name, build in builds.items()}


def user_attributes(user, released) -> dict:
    released = set(released or [])
    values = {}
    if "identifier" in released:
        values["identifier"] = user.identifier
    if "firstName" in released:
        values["firstName"] = user.first_name
    if "lastName" in released:
        values["lastName"] = user.last_name
    if "displayName" in released:
        values["displayName"] = user.display_name
    if "entProfile" in released:
        values["entProfile"] = user.profile
    reads = {}
    if "uai" in released:
        reads["uai"] = lambda: user.structures.values_list("uai")
    if "classes" in released:
        reads["classes"] = lambda: user.classes.values_list("name")
    if reads:
        lists = _user_value_lists(user, reads)
        if "uai" in lists:
            values["uai"] = lists["uai"]
        if "classes" in lists:
            values["classes"] = lists["classes"]
    if "email" in released and user.email:
        values["email"] = user.email
    return values


# --- CAS: service registry and tickets ---------------------------------------------------------


def find_cas_application(service: str) -> Application | None:
    if not service:
        return None
    for app in Application.objects.filter(enabled=True, kind=Application.Kind.CAS):
        if app.matches_service(service):
            return app
    return None


def _new_ticket(prefix: str) -> str:
    # 256 bits from the CSPRNG; CAS 3.0 §3.1.2 asks for at least 32 characters and §3.7 for
    # characters from [A-Za-z0-9-] only (token_urlsafe would give "_").
    return f"{prefix}-{secrets.token_hex(32)}"


def _digest(ticket: str) -> str:
    return tokens.digest("cas-ticket", ticket)


def with_ticket(service: str, ticket: str) -> str:
    return _add_query(service, {"ticket": ticket})


def note_password_typed(request):
    """Called at each login: a ticket that follows may count as primary credentials."""
    request.session[AUTH_TIME_KEY] = request.session[LOGIN_FORM_KEY] = time.time()


def follows_login_form(request) -> bool:
    """Whether this SSO request is the redirect that ends a portal form's submission (once)."""
    posted = request.session.pop(LOGIN_FORM_KEY, None)
    if posted is None or time.time() - posted > LOGIN_FORM_WINDOW_SECONDS:
        return False
    referer = request.headers.get("Referer", "")
    # The form pages live under /auth/ (login, activation); a tile clicked on / is a plain link.
    return urlsplit(referer).path.startswith("/auth/")


def session_remembered(session) -> bool:
    """Whether the portal session was opened with "Se souvenir de moi".

    accounts.services.log_in marks it by the session's expiry: set_expiry(0) (browser session)
    when unchecked, set_expiry(PORTAIL_REMEMBER_ME_DAYS days) when checked.
    """
    return bool(session.get("_session_expiry"))


def ask_for_credentials(request):
    """CAS is about to send the user to the login page (first visit or renew=true)."""
    request.session[CREDENTIALS_ASKED_KEY] = time.time()


def credentials_just_typed(request) -> bool:
    asked = request.session.get(CREDENTIALS_ASKED_KEY)
    typed = request.session.get(AUTH_TIME_KEY)
    return asked is not None and typed is not None and typed >= asked


def registered_service(request, service: str) -> Application:
    """The CAS application a service URL belongs to; UnknownService (audited) if none."""
    app = find_cas_application(service)
    if app is None:
        record("sso.cas.unknown_service", request=request, service=service[:300])
        raise UnknownService
    return app


def grant_service_ticket(request, service: str, *, renew: bool, app=None) -> str:
    """Issue a service ticket for the logged-in user and return the URL that carries it.

    `app` is the service's registered application when the caller already looked it up.
    Raises UnknownService (the service matches no registered pattern: never a ticket),
    ApplicationNotAvailable, AccountNotActive.
    """
    if app is None:
        app = registered_service(request, service)
    user = request.user
    # is_active: a deactivated leaver keeps state ACTIVE but may no longer sign in anywhere.
    if not user.is_active or user.state != State.ACTIVE:
        raise AccountNotActive
    if not app.is_available_to(user):
        raise ApplicationNotAvailable
    from_credentials = credentials_just_typed(request)
    request.session.pop(CREDENTIALS_ASKED_KEY, None)
    if renew and not from_credentials:
        raise RuntimeError("renew requires the password first")  # the view asks for it before
    ticket = _issue(
        app,
        user,
        service,
        session_key=session_reference(request.session),
        from_credentials=from_credentials,
        remembered=session_remembered(request.session),
        authenticated_at=request.session.get(AUTH_TIME_KEY),
    )
    if app.cas_single_logout:
        sent = request.session.get(SLO_SESSION_KEY, [])
        sent.append([ticket, service])
        request.session[SLO_SESSION_KEY] = sent[-MAX_SLO_ENTRIES:]
        SingleLogoutRecord.objects.create(
            user=user,
            session_key=session_reference(request.session),
            ticket=ticket,
            service=service,
        )
    record("sso.cas.ticket", request=request, target=user, application=app.name, renew=renew)
    return with_ticket(service, ticket)


AUTHENTICATION_DATE = "authenticationDate"


def cas_datetime(when: float) -> str:
    """xs:dateTime in UTC, as CAS 3.0 Appendix A types cas:authenticationDate."""
    return datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _issue(app, user, service, *, authenticated_at=None, **fields) -> str:
    prefix = "PT" if fields.get("kind") == ServiceTicket.Kind.PROXY else "ST"
    ticket = _new_ticket(prefix)
    attributes = user_attributes(user, app.released_attributes)
    # CAS 3.0 Appendix A: when the user authenticated (the portal login), kept with the ticket.
    attributes[AUTHENTICATION_DATE] = cas_datetime(authenticated_at or time.time())
    ServiceTicket.objects.create(
        digest=_digest(ticket),
        application=app,
        service=service,
        user=user,
        identifier=cas_user(app, user),
        attributes=attributes,
        **fields,
    )
    if secrets.randbelow(100) == 0:
        purge_expired_tickets()
    return ticket


def cas_user(app, user) -> str:
    """cas:user: the ENT identifier, or for « identifiant opaque » services the pairwise one."""
    if app.cas_opaque_identifier:
        from .privacy import pairwise_subject, sector_of

        return pairwise_subject(user.pk, sector_of(app))
    return user.identifier


def purge_expired_tickets() -> int:
    """Expired tickets (never validated) and PGTs: nothing to keep, they open nothing."""
    now = timezone.now()
    oldest = now - timedelta(seconds=settings.PORTAIL_CAS_TICKET_SECONDS)
    deleted, _ = ServiceTicket.objects.filter(created_at__lte=oldest).delete()
    ProxyGrantingTicket.objects.filter(expires_at__lte=now).delete()
    # No portal session outlives "Se souvenir de moi": its logout records can go.
    session_days = max(settings.PORTAIL_REMEMBER_ME_DAYS, 1)
    SingleLogoutRecord.objects.filter(created_at__lte=now - timedelta(days=session_days)).delete()
    from oauth2_provider.models import RefreshToken

    from .models import AuthorizationTime, SpentCode

    SpentCode.objects.filter(expires_at__lte=now).delete()

    # auth_time of refresh-token families that no longer have a token.
    AuthorizationTime.objects.filter(grant=None).exclude(
        token_family__in=RefreshToken.objects.exclude(token_family=None).values("token_family")
    ).delete()
    return deleted


@dataclass
class _Consumed:
    service: str
    from_credentials: bool
    proxies: list
    identifier: str
    attributes: dict
    application_id: int
    user_id: int
    session_key: str
    kind: str
    remembered: bool


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _consume(ticket: str, kinds) -> _Consumed:
    """Take the ticket out of the store in one statement, or raise INVALID_TICKET.

    DELETE … RETURNING (PostgreSQL; SQLite ≥ 3.35): of two concurrent validations of the same
    ticket, one gets the row. Only unexpired tickets of accounts still active qualify.
    On PostgreSQL the commit is asynchronous (synchronous_commit off, set inside the statement
    by set_config(…, is_local => true), so for this one autocommitted statement only, in one
    round trip): a database crash could forget a consumption made in its last fraction of a second,
    which would let that ticket be replayed within its remaining seconds of life. That is the
    trade Apereo CAS makes with its default in-memory ticket registry, and it removes the disk
    flush that would otherwise bound validations to a few hundred per second.
    """
    if not ticket.startswith(tuple(f"{k}-" for k in kinds)):
        raise CasError("INVALID_TICKET", "Ticket not recognized.")
    oldest = timezone.now() - timedelta(seconds=settings.PORTAIL_CAS_TICKET_SECONDS)
    tickets, users = ServiceTicket._meta.db_table, User._meta.db_table
    placeholders = ", ".join(["%s"] * len(kinds))
    asynchronous = (
        "AND set_config('synchronous_commit', 'off', true) = 'off' "
        if connection.vendor == "postgresql"
        else ""
    )
    sql = (
        f"DELETE FROM {tickets} WHERE digest = %s AND created_at > %s "  # noqa: S608
        f"AND kind IN ({placeholders}) "
        f"AND user_id IN (SELECT id FROM {users} WHERE state = %s AND deactivated_at IS NULL) "
        f"{asynchronous}"
        "RETURNING service, from_credentials, proxies, identifier, attributes, "
        "application_id, user_id, session_key, kind, remembered"
    )
    params = [
        _digest(ticket),
        connection.ops.adapt_datetimefield_value(oldest),
        *kinds,
        State.ACTIVE,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        # Plain text: the answer escapes it once (XML) or not at all (JSON).
        raise CasError("INVALID_TICKET", f"Ticket {ticket[:12]}… not recognized.")
    consumed = _Consumed(*row)
    consumed.from_credentials = bool(consumed.from_credentials)
    consumed.remembered = bool(consumed.remembered)
    consumed.proxies = _json(consumed.proxies) or []
    consumed.attributes = _json(consumed.attributes) or {}
    return consumed


def validate_ticket(
    ticket: str, service: str, *, accept_proxy_tickets: bool, renew: bool, pgt_url: str = ""
) -> Validation:
    """Validate and consume a ticket (CAS 3.0 §2.4-2.6). Raises CasError with the spec's code.

    CAS 3.0 §3.1.1 and §3.2.1: a ticket presented for validation is invalidated whatever the
    outcome, so it is consumed first and every check (service, pgtUrl, kind, renew) follows.
    """
    if not ticket:
        raise CasError("INVALID_REQUEST", "'ticket' and 'service' parameters are both required.")
    st = _consume(ticket, ("ST", "PT"))
    if not service:
        raise CasError("INVALID_REQUEST", "'ticket' and 'service' parameters are both required.")
    if st.kind == "PT" and not accept_proxy_tickets:
        raise CasError("INVALID_TICKET", "Proxy tickets are not accepted here: use /proxyValidate.")
    if pgt_url:
        check_proxy_callback(pgt_url)
    if st.service != service:
        # CAS 3.0 §2.5.3: the ticket is invalidated all the same (it was consumed above).
        raise CasError("INVALID_SERVICE", "Ticket was not issued for this service.")
    if renew and not st.from_credentials:
        raise CasError("INVALID_TICKET_SPEC", "Ticket was not issued from primary credentials.")
    if pgt_url and not Application.objects.filter(pk=st.application_id, cas_allow_proxy=True):
        raise CasError(
            "UNAUTHORIZED_SERVICE_PROXY", "The service is not authorized to perform proxy."
        )
    result = Validation(
        identifier=st.identifier,
        attributes=st.attributes,
        proxies=st.proxies,
        from_new_login=st.from_credentials,
        remembered=st.remembered,
    )
    if pgt_url:
        result.pgt_iou = _grant_proxy_granting_ticket(st, pgt_url)
    return result


# --- CAS proxy ---------------------------------------------------------------------------------


def _loopback_http_allowed() -> bool:
    return outbound.loopback_allowed()


def check_proxy_callback(pgt_url: str):
    """CAS 3.0 §2.5.4: the callback must be HTTPS (loopback HTTP only in tests/development)."""
    parts = urlsplit(pgt_url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname == "127.0.0.1" and _loopback_http_allowed():
        return
    raise CasError("INVALID_PROXY_CALLBACK", "The proxy callback URL must use HTTPS.")


def _grant_proxy_granting_ticket(st: "_Consumed", pgt_url: str) -> str | None:
    """Deliver a PGT to the callback; return its IOU, or None when the callback did not take it.

    The callback must belong to the service's own registered application, which must be allowed
    to proxy. CAS 3.0 §2.5.4: the PGT counts only if the callback answers 200.
    """
    app = Application.objects.get(pk=st.application_id)
    if not (app.cas_allow_proxy and app.matches_service(pgt_url)):
        return None
    pgt, iou = _new_ticket("PGT"), _new_ticket("PGTIOU")
    callback = _add_query(pgt_url, {"pgtIou": iou, "pgtId": pgt})
    if outbound.call(callback) != 200:
        log.info("CAS proxy callback not delivered: %s", pgt_url)
        return None
    ProxyGrantingTicket.objects.create(
        digest=_digest(pgt),
        application=app,
        user_id=st.user_id,
        session_key=st.session_key,
        proxies=[pgt_url, *st.proxies],
        expires_at=timezone.now() + timedelta(hours=settings.PORTAIL_CAS_PGT_HOURS),
    )
    return iou


def _add_query(url: str, params: dict) -> str:
    # The URL's own query is kept byte for byte: the client compares it with its service URL.
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


@transaction.atomic
def grant_proxy_ticket(pgt: str, target_service: str) -> str:
    """/proxy (CAS 3.0 §2.7): a proxy ticket for target_service, from a valid PGT."""
    if not pgt or not target_service:
        raise CasError("INVALID_REQUEST", "'pgt' and 'targetService' parameters are both required.")
    granting = (
        ProxyGrantingTicket.objects.select_related("user")
        .filter(digest=_digest(pgt), expires_at__gt=timezone.now())
        .first()
    )
    if granting is None or not granting.user.is_active or granting.user.state != State.ACTIVE:
        raise CasError("INVALID_TICKET", "Proxy-granting ticket not recognized.")
    target = find_cas_application(target_service)
    if target is None or not target.is_available_to(granting.user):
        raise CasError("UNAUTHORIZED_SERVICE", "The target service is not authorized.")
    return _issue(
        target,
        granting.user,
        target_service,
        kind=ServiceTicket.Kind.PROXY,
        session_key=granting.session_key,
        proxies=list(granting.proxies),
        authenticated_at=granting.created_at.timestamp(),
    )


def revoke_everything(user):
    """The account was blocked or its password changed: nothing handed out survives.

    Its sessions end without a logout (session_stamp), so the applications are told here: each CAS
    service that got a ticket with single logout on receives its logoutRequest, each OIDC client
    holding a code or token its back-channel logout token — after the commit, by the outbound
    guard, each with its short timeout.
    """
    revoke_everything_for([user.pk])


def revoke_everything_for(user_ids):
    """revoke_everything() for many accounts at once (September's leavers): a fixed number of
    queries per call, whatever the number of accounts."""
    from oauth2_provider.models import AccessToken, Grant, IDToken, RefreshToken

    user_ids = list(user_ids)
    records = SingleLogoutRecord.objects.filter(user_id__in=user_ids)
    cas_sessions = defaultdict(list)
    for user_id, ticket, service in records.values_list("user_id", "ticket", "service"):
        cas_sessions[user_id].append((ticket, service))
    records.delete()
    client_pks = defaultdict(set)
    for model in (Grant, RefreshToken, AccessToken, IDToken):
        rows = model.objects.filter(user_id__in=user_ids).values_list("user_id", "application_id")
        for user_id, application_id in rows:
            client_pks[user_id].add(application_id)
    for model in (ServiceTicket, ProxyGrantingTicket, Grant, RefreshToken, AccessToken, IDToken):
        model.objects.filter(user_id__in=user_ids).delete()
    to_notify = set(cas_sessions) | set(client_pks)
    if to_notify:
        transaction.on_commit(
            lambda: _notify_revocations(to_notify, dict(cas_sessions), dict(client_pks))
        )


def _notify_revocations(user_ids, cas_sessions, client_pks):
    from django.contrib.auth import get_user_model

    for user_id, user in get_user_model().objects.in_bulk(user_ids).items():
        _notify_revocation(user, cas_sessions.get(user_id, []), client_pks.get(user_id, set()))


def _notify_revocation(user, cas_sessions, client_pks):
    from .oidc_logout import notify_backchannel

    for ticket, service in cas_sessions:
        app = find_cas_application(service)
        if app is not None and app.cas_single_logout:
            send_logout_request(app, ticket, service)
    for app in Application.objects.filter(oidc_client_id__in=client_pks).select_related(
        "oidc_client"
    ):
        notify_backchannel(app, user)


# --- Single logout -----------------------------------------------------------------------------


def logout_request_xml(ticket: str) -> str:
    """The SAML 2.0 LogoutRequest of CAS 3.0 §2.3.3; SessionIndex is the service ticket."""
    now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="LR-{secrets.token_hex(16)}" Version="2.0" IssueInstant="{now}">'
        "<saml:NameID>@NOT_USED@</saml:NameID>"
        f"<samlp:SessionIndex>{escape(ticket)}</samlp:SessionIndex>"
        "</samlp:LogoutRequest>"
    )


def send_logout_request(app, ticket: str, service: str) -> bool:
    status = outbound.call(service, form={"logoutRequest": logout_request_xml(ticket)})
    if status is not None and 200 <= status < 300:
        return True
    log.info("CAS single logout not delivered to %s", app.name)
    return False


def single_logout(session) -> int:
    """POST the logoutRequest to each registered service that got a ticket in this session.

    Synchronous, each with a short timeout: logout must not hang on an application that is down.
    Returns how many services acknowledged.
    """
    sent = session.get(SLO_SESSION_KEY) or []
    # Rows name the session by its keyed digest, never by the cookie's value.
    reference = session_reference(session)
    if reference:
        ProxyGrantingTicket.objects.filter(session_key=reference).delete()
        SingleLogoutRecord.objects.filter(session_key=reference).delete()
    acknowledged = 0
    for ticket, service in sent:
        app = find_cas_application(service)
        if app is None or not app.cas_single_logout:
            continue  # only to services still registered
        acknowledged += send_logout_request(app, ticket, service)
    session.pop(SLO_SESSION_KEY, None)
    return acknowledged
