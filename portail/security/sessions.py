"""Sessions stored under a keyed hash of their key, with an absolute lifetime.

At rest: the cookie carries the session key; the database row (django_session.session_key) and
the cache entry are named by HMAC-SHA256(key derived from SECRET_KEY for this one purpose, session
key), so a database dump plus a copy of Redis gives no cookie that opens a session (a console
session that passed its second factor included). The single sign-on rows that name a session
(CAS tickets, proxy-granting tickets, single-logout records) hold the same digest, through
`stored_session_key`. Sessions opened before this backend simply end (their rows are not found).

Lifetime: a session lasts at most PORTAIL_REMEMBER_ME_DAYS days (« Se souvenir de moi ») or
PORTAIL_SESSION_HOURS hours from the login (NIST 800-63B §4.1.3/§7.2: reauthentication at least
every 30 days whatever the activity). Use slides Django's expiry, never past that end: the
database row, the cache entry and the cookie all expire by then, and a session read after it is
empty (a login is needed), whatever saved it in between (a CAS login, the console's mark).

Two engines: `portail.security.sessions` (database only: without Redis the cache is per process,
and a logout in one worker must end the session in all of them) and
`portail.security.sessions_cached` (Redis in front, written through to the database). A cache
error never reaches the user (issue 8 §2): reads fall back to the database, and a write that the
cache refuses is skipped; a stale cache entry cannot outlive a logout because every entry is
deleted on logout and expires with the session's end anyway.
"""

import logging
import math
import time
from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.core.cache import caches
from django.db import DatabaseError, IntegrityError, router, transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.crypto import get_random_string, salted_hmac

from portail.ops import statements

log = logging.getLogger(__name__)

# Session data key: when the session was opened (epoch seconds); reset by every login.
STARTED_AT = "_portail_started_at"
# The digest's purpose: a key of its own, derived from SECRET_KEY, for nothing else.
_HMAC_PURPOSE = "portail.security.sessions.stored_session_key"
# django_session.session_key is 40 characters: 160 bits of HMAC-SHA256 (NIST SP 800-107 §5.3.4
# allows truncating an HMAC; 160 bits leave no room to guess or collide).
_STORED_LENGTH = 40


def stored_session_key(session_key: str | None) -> str:
    """The name a session is stored under (database and cache), never the cookie's value."""
    if not session_key:
        return ""
    return salted_hmac(_HMAC_PURPOSE, session_key, algorithm="sha256").hexdigest()[:_STORED_LENGTH]


def session_reference(session) -> str:
    """What other tables store to name the current session (e.g. SSO tickets)."""
    return stored_session_key(getattr(session, "session_key", None))


def absolute_lifetime(remembered: bool) -> timedelta:
    if remembered:
        return timedelta(days=settings.PORTAIL_REMEMBER_ME_DAYS)
    return timedelta(hours=settings.PORTAIL_SESSION_HOURS)


@receiver(user_logged_in, dispatch_uid="portail.security.sessions.started_at")
def _login_starts_the_session(sender, request, user, **kwargs):
    # The lifetime counts from the moment the password (or code) was typed: a re-login restarts
    # it, nothing else does (the console's second factor and reset links keep it).
    session = getattr(request, "session", None)
    if session is not None:
        session[STARTED_AT] = time.time()


class SessionStore(DBStore):
    """Database sessions under a keyed hash of their key, with an absolute end."""

    # --- the absolute end ---

    def absolute_end(self) -> datetime | None:
        started = self._get_session().get(STARTED_AT)
        if started is None:
            return None
        remembered = bool(self._get_session().get("_session_expiry"))
        return datetime.fromtimestamp(started, tz=UTC) + absolute_lifetime(remembered)

    def get_expiry_age(self, **kwargs):
        age = super().get_expiry_age(**kwargs)
        end = self.absolute_end()
        if end is None:
            return age
        modification = kwargs.get("modification") or timezone.now()
        # Rounded up: the cookie may outlive the end by under a second; the server refuses it anyway.
        return max(0, min(age, math.ceil((end - modification).total_seconds())))

    def get_expiry_date(self, **kwargs):
        date = super().get_expiry_date(**kwargs)
        end = self.absolute_end()
        return date if end is None else min(date, end)

    def _ended(self, data) -> bool:
        started = data.get(STARTED_AT)
        if started is None:
            return False
        lifetime = absolute_lifetime(bool(data.get("_session_expiry")))
        return time.time() >= started + lifetime.total_seconds()

    # --- storage under the digest ---

    def _stored_key(self, session_key=None) -> str:
        return stored_session_key(session_key or self.session_key)

    def _get_session_from_db(self):
        try:
            return self.model.objects.get(
                session_key=self._stored_key(), expire_date__gt=timezone.now()
            )
        except self.model.DoesNotExist:
            self._session_key = None
            return None

    def _load_from_db(self):
        stored = self._get_session_from_db()
        return self.decode(stored.session_data) if stored else {}

    def load(self):
        if not self.session_key:
            return {}
        data = self._load_from_db()
        return self._unless_ended(data)

    def _unless_ended(self, data):
        if data and self._ended(data):
            # Past its absolute end: the row goes, and this request starts a fresh session.
            self.delete()
            self._session_key = None
            return {}
        return data

    def exists(self, session_key):
        return self.model.objects.filter(session_key=stored_session_key(session_key)).exists()

    def create_model_instance(self, data):
        return self.model(
            session_key=stored_session_key(self._get_or_create_session_key()),
            session_data=self.encode(data),
            expire_date=self.get_expiry_date(),
        )

    # --- the new key at login, written once ---

    def cycle_key(self):
        """A new key for the same data (session fixation, OWASP ASVS 5.0 V7.2.4), stored once.

        Django's cycle_key checks that a new key is free (a SELECT), inserts the row at once,
        and the response then saves it again (an UPDATE and a second cache write): a login paid
        three statements and two Redis writes for one row. Here the new key is drawn (32
        characters of 36: 165 bits, so a collision never happens, and the INSERT would refuse
        one anyway), and the response's save inserts the new row, then deletes the former one, in
        Django's order: a new session that could not be stored leaves the former one in place
        (an activation whose login failed after its commit relies on it), and the former key
        never carries the logged-in data (bench/README.md, « login »).
        """
        data = self._session
        if not getattr(self, "_insert_on_save", False):
            # (Cycled twice before a save: the key in between was never stored.)
            self._former_key = self.session_key
        self._session_key = get_random_string(32, VALID_KEY_CHARS)
        self._session_cache = data
        self._insert_on_save = True
        self.modified = True

    def save(self, must_create=False):
        if getattr(self, "_insert_on_save", False):
            self._insert_on_save = False
            must_create = True
        if self.session_key is not None:
            # Sessions that never saw a login (reset and activation pages) end too.
            self._get_session(no_load=must_create).setdefault(STARTED_AT, time.time())
        try:
            self._write(must_create)
        except CreateError:
            if self._session_key is None or not must_create:
                raise
            # The drawn key was taken (never seen): Django's own path, with its check.
            self._session_key = self._get_new_session_key()
            self._write(must_create=True)
        former, self._former_key = getattr(self, "_former_key", None), None
        if former and former != self._session_key:
            self.delete(former)  # the login's new row exists: the pre-login key dies now

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.model.objects.filter(session_key=stored_session_key(session_key)).delete()

    def _write(self, must_create):
        """Django's DBStore.save, without its BEGIN and COMMIT when there is no transaction.

        Django wraps the one INSERT (or UPDATE) in transaction.atomic so that a refused INSERT
        leaves an enclosing transaction usable; in autocommit mode the statement is its own
        transaction already, so the wrapper only cost two round trips per login (bench/README.md,
        « Login CPU »). Inside a transaction (an activation's, a test's), Django's path as is.
        """
        using = router.db_for_write(self.model)
        if self.session_key is None or transaction.get_connection(using).in_atomic_block:
            return DBStore.save(self, must_create)
        obj = self.create_model_instance(self._get_session(no_load=must_create))
        try:
            if must_create:  # a login's new row: the INSERT compiled once (ops.statements)
                statements.insert(obj)
            else:
                obj.save(force_update=True, using=using)
        except IntegrityError:
            if must_create:
                raise CreateError from None
            raise
        except DatabaseError:
            if not must_create:
                raise UpdateError from None
            raise

    # Django's async paths, through the same code (the portal serves WSGI; kept correct anyway).
    async def aload(self):
        return await sync_to_async(self.load)()

    async def aexists(self, session_key):
        return await sync_to_async(self.exists)(session_key)

    async def asave(self, must_create=False):
        return await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key=None):
        return await sync_to_async(self.delete)(session_key)


class CachedSessionStore(SessionStore):
    """The same, read from the cache (Redis) first and written through to the database.

    Every cache call is guarded: Redis down, frozen (the cache's own timeout) or refusing
    degrades to the database, never to an error page.
    """

    cache_key_prefix = "portail.sessions:"
    # A cache entry lives at most this long: a delete that Redis missed while it was down (a
    # logout, end_all_sessions) cannot be brought back by a Redis restart for longer than this.
    # Each active session reads the database once per period: cheap, and the database decides.
    cache_seconds = 300

    def __init__(self, session_key=None):
        self._cache = caches[settings.SESSION_CACHE_ALIAS]
        super().__init__(session_key)

    def _cache_key(self, session_key=None) -> str:
        return self.cache_key_prefix + self._stored_key(session_key)

    def _cache_call(self, operation, *args):
        try:
            return getattr(self._cache, operation)(*args)
        except Exception as exc:  # noqa: BLE001 - any cache failure degrades to the database
            log.warning("session cache %s failed, using the database: %r", operation, exc)
            return None

    def load(self):
        if not self.session_key:
            return {}
        data = self._cache_call("get", self._cache_key())
        if data is None:
            stored = self._get_session_from_db()
            if stored is None:
                return {}
            data = self.decode(stored.session_data)
            if not self._ended(data):
                # The row's expiry already stops at the absolute end (see get_expiry_date).
                age = math.ceil((stored.expire_date - timezone.now()).total_seconds())
                self._cache_call("set", self._cache_key(), data, min(age, self.cache_seconds))
        return self._unless_ended(data)

    def save(self, must_create=False):
        super().save(must_create)
        age = min(self.get_expiry_age(), self.cache_seconds)
        self._cache_call("set", self._cache_key(), self._session, age)

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        super().delete(session_key)
        self._cache_call("delete", self._cache_key(session_key))
