"""The index of an account's open sessions (models.OpenSession): kept, listed, ended.

Kept: a row at every login (the user_logged_in signal, whatever the login page: the login form,
activation, federation), re-pointed when a session changes its key without a new login (the
console's second factor, a password change: middleware below), gone at logout. Rows of sessions
that expired on their own are dropped when the account is listed or logs in again.

Ended: « Se déconnecter de tous les autres appareils » deletes the other sessions' database rows
and cache entries (whatever the engine: the database is the truth, the cache a copy) and ends
what single sign-on handed out in each of them, as a logout in that browser would: the CAS
logoutRequest to each service, proxy-granting tickets, and the OIDC tokens and codes of that
session with the back-channel logout token.
"""

import logging
from datetime import UTC, datetime
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection, transaction
from django.utils import timezone

from portail.audit.services import record
from portail.ops import statements
from portail.security.sessions import STARTED_AT, stored_session_key

from .models import OpenSession

log = logging.getLogger(__name__)


def _store_class():
    return import_module(settings.SESSION_ENGINE).SessionStore


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:512]


def index_session(request, user) -> None:
    """At login: this session joins the account's index (and dead rows leave it).

    One statement on PostgreSQL (two on SQLite) where the ORM took seven round trips (the rows,
    the sessions alive among them, then update_or_create's SELECT, SAVEPOINT, INSERT, RELEASE
    and its transaction): every login pays it (bench/README.md, « Login CPU »). The dead rows
    are those of forget_dead_sessions, this session's own row excepted (its database row is
    written when the response saves the session); the row is inserted, or re-pointed if this
    key was indexed already, as update_or_create did.
    """
    stored = stored_session_key(request.session.session_key)
    if not stored:
        return
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    row = [user.pk, stored, now, _user_agent(request), getattr(request, "school_network", "") or ""]
    dead = [user.pk, stored, now]
    if statements.deferring(connection):
        # Both wait for the session's INSERT (ops.statements.later): one statement with
        # last_login, the audit event and the session row, one snapshot, atomic together; they
        # never touch the same row (the DELETE leaves this key's row alone, and does not see the
        # new session row, as before: it is inserted after).
        statements.later(_DELETE_DEAD, dead)
        statements.later(_UPSERT, row)
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Data-modifying CTE: both in one statement, one snapshot, atomic together; they
            # never touch the same row (the DELETE leaves this key's row alone).
            cursor.execute(*statements.fold([(_DELETE_DEAD, dead)], _UPSERT, row))
        else:
            cursor.execute(_DELETE_DEAD, dead)
            cursor.execute(_UPSERT, row)


# The account's indexed sessions whose session row is gone or expired (forget_dead_sessions).
# (Tables profile_opensession and django_session: tests/test_login_statements.py runs these.)
_DELETE_DEAD = (
    "DELETE FROM profile_opensession WHERE user_id = %s AND stored_key <> %s AND NOT EXISTS "
    "(SELECT 1 FROM django_session WHERE session_key = profile_opensession.stored_key "
    "AND expire_date > %s)"
)
_UPSERT = (
    "INSERT INTO profile_opensession (user_id, stored_key, created_at, user_agent, network) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (stored_key) DO UPDATE SET "
    "user_id = excluded.user_id, created_at = excluded.created_at, "
    "user_agent = excluded.user_agent, network = excluded.network"
)


def forget_session(session_key: str | None) -> None:
    stored = stored_session_key(session_key)
    if stored:
        OpenSession.objects.filter(stored_key=stored).delete()


def rekey_session(former_key: str | None, session_key: str | None) -> None:
    """The session took a new key (cycle_key) without a login: its row follows it."""
    former, current = stored_session_key(former_key), stored_session_key(session_key)
    if not former or not current or former == current:
        return
    rows = OpenSession.objects.filter(stored_key=former)
    if OpenSession.objects.filter(stored_key=current).exists():
        rows.delete()  # a login in the same browser already indexed the new key
    else:
        rows.update(stored_key=current)


def _alive(stored_keys) -> set[str]:
    return set(
        Session.objects.filter(
            session_key__in=list(stored_keys), expire_date__gt=timezone.now()
        ).values_list("session_key", flat=True)
    )


def forget_dead_sessions(user) -> int:
    rows = list(OpenSession.objects.filter(user=user).values_list("stored_key", flat=True))
    dead = set(rows) - _alive(rows)
    if not dead:
        return 0
    return OpenSession.objects.filter(stored_key__in=dead).delete()[0]


def open_sessions(request, user) -> list[OpenSession]:
    """The account's open sessions, this one first; each with `.current`."""
    forget_dead_sessions(user)
    current = stored_session_key(request.session.session_key)
    sessions = list(OpenSession.objects.filter(user=user))
    if current and not any(s.stored_key == current for s in sessions):
        # Opened before the index existed: it joins it, dated by its own login time.
        sessions.insert(0, _index_current(request, user, current))
    for session in sessions:
        session.current = session.stored_key == current
    return sorted(sessions, key=lambda s: not s.current)


def _index_current(request, user, stored) -> OpenSession:
    started = request.session.get(STARTED_AT)
    opened = datetime.fromtimestamp(started, tz=UTC) if started else timezone.now()
    session, _ = OpenSession.objects.get_or_create(
        stored_key=stored,
        defaults={
            "user": user,
            "created_at": opened,
            "user_agent": _user_agent(request),
            "network": getattr(request, "school_network", "") or "",
        },
    )
    return session


def end_other_sessions(request, user) -> int:
    """End every session of `user` but this request's; return how many ended."""
    current = stored_session_key(request.session.session_key)
    rows = list(OpenSession.objects.filter(user=user).exclude(stored_key=current))
    stored_keys = [row.stored_key for row in rows]
    store = _store_class()()
    ended_data = []
    with transaction.atomic():
        for row in Session.objects.filter(session_key__in=stored_keys):
            try:
                ended_data.append(store.decode(row.session_data))
            except Exception:  # noqa: BLE001 - an unreadable session still ends
                log.warning("an ended session could not be decoded")
        alive = len(_alive(stored_keys))
        Session.objects.filter(session_key__in=stored_keys).delete()
        OpenSession.objects.filter(stored_key__in=stored_keys).delete()
        _end_single_sign_on(stored_keys)
        record("account.sessions.others_ended", request=request, target=user, count=alive)
    _forget_cached(store, stored_keys)
    for data in ended_data:
        _notify_applications(data, user)
    return alive


def _end_single_sign_on(stored_keys):
    """Proxy-granting tickets and single-logout records of those sessions (named by digest)."""
    from portail.sso.models import ProxyGrantingTicket, SingleLogoutRecord

    ProxyGrantingTicket.objects.filter(session_key__in=stored_keys).delete()
    SingleLogoutRecord.objects.filter(session_key__in=stored_keys).delete()


def _forget_cached(store, stored_keys):
    """The Redis copies go too (a missed delete lives at most CachedSessionStore.cache_seconds)."""
    prefix = getattr(store, "cache_key_prefix", None)
    if prefix is None or not stored_keys:
        return
    try:
        caches[settings.SESSION_CACHE_ALIAS].delete_many([prefix + key for key in stored_keys])
    except Exception as exc:  # noqa: BLE001 - Redis down: the database already decided
        log.warning("session cache delete failed: %r", exc)


def _notify_applications(data, user):
    """What the ended session's own logout would have told the applications."""
    from portail.sso import oidc_logout, services

    try:
        services.single_logout(data)  # CAS logoutRequest to each service of that session
        oidc_logout.end_oidc_sessions(data, user)  # its tokens and codes; back-channel logout
    except Exception:  # noqa: BLE001 - an application that is down does not undo the logout
        log.exception("single logout of an ended session failed")


class SessionIndexMiddleware:
    """Re-points the index when a session changes key during a request (no login: no signal).

    Costs nothing on ordinary requests: one comparison of two strings; a query only when the
    key changed (a second factor passed, a password changed).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        former = session.session_key if session is not None else None
        response = self.get_response(request)
        if former and session is not None:
            current = session.session_key
            if current and current != former:
                rekey_session(former, current)
        return response
