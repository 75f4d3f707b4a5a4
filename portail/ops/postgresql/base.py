"""Django's PostgreSQL backend, with a deadline on every wait for the server and a short breaker.

libpq's connect_timeout bounds the connection, statement_timeout bounds a query the server runs,
and TCP keepalives / tcp_user_timeout (settings.DATABASES OPTIONS) end a connection whose packets
are no longer acknowledged. What none of them bounds: a server, proxy or pooler that keeps the
connection open and acknowledged but never answers. Here every wait of psycopg on the socket has a
deadline (PORTAIL_DB_WAIT_SECONDS, longer than the statement timeout; the health check of a reused
connection gets a shorter one), after which the connection is dropped and an OperationalError
raised: the request gets the 503 page (ops.middleware) and the next one reconnects.

After a failed connection attempt, new attempts fail at once for PORTAIL_DB_BREAKER_SECONDS, so
that during an outage requests get their 503 at once instead of each waiting connect_timeout.
"""

import threading
import time

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import errors
from psycopg.connection import _WAIT_INTERVAL


class DeadlineConnection(psycopg.Connection):
    """psycopg's Connection whose waits on the server end at a deadline."""

    portail_deadline: float | None = None

    @classmethod
    def connect(cls, *args, **kwargs):
        connection = super().connect(*args, **kwargs)
        connection.portail_deadline = settings.PORTAIL_DB_WAIT_SECONDS
        return connection

    def wait(self, gen, interval=_WAIT_INTERVAL, timeout=None):
        if timeout is None:
            timeout = self.portail_deadline
        try:
            return super().wait(gen, interval=interval, timeout=timeout)
        except errors._WaitTimeout:
            # The protocol is mid-exchange: the connection cannot be reused, drop it.
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"PostgreSQL n'a pas répondu en {timeout} s: connexion abandonnée"
            ) from None


class _ConnectBreaker:
    def __init__(self):
        self.failed_at = None
        self.lock = threading.Lock()

    def check(self):
        with self.lock:
            if self.failed_at is None:
                return
            if time.monotonic() - self.failed_at < settings.PORTAIL_DB_BREAKER_SECONDS:
                raise psycopg.OperationalError(
                    "PostgreSQL injoignable à l'instant: nouvel essai dans quelques secondes"
                )

    def failed(self):
        with self.lock:
            self.failed_at = time.monotonic()

    def succeeded(self):
        with self.lock:
            self.failed_at = None


_breaker = _ConnectBreaker()


def _check_pooled(connection):
    """The pool's check of a connection it hands out: one round trip, with the short deadline.

    Every connection is checked, even one given back a moment ago (measured, branch floor: ~13 µs
    of CPU and one loopback round trip, ~1% of a userinfo). Skipping the check for a connection
    used within the last second would send a request's first statement to a server that has
    just gone silent with the statement's deadline (PORTAIL_DB_WAIT_SECONDS, 6 s) instead of
    this one (1 s): past issue 8 §2's « 503 within 5 s » (tests/test_faults_postgres.py).
    """
    from psycopg_pool import ConnectionPool

    connection.portail_deadline = settings.PORTAIL_DB_HEALTH_CHECK_SECONDS
    try:
        ConnectionPool.check_connection(connection)
    finally:
        connection.portail_deadline = settings.PORTAIL_DB_WAIT_SECONDS


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        # With PORTAIL_DB_POOL_SIZE the pool makes the connections: they get the deadlines from
        # birth, and the pool's own health check the short one (a black-holed server is given up
        # in PORTAIL_DB_HEALTH_CHECK_SECONDS, then the pool's getconn timeout bounds the rest).
        pool = super().pool
        if pool is not None and pool.connection_class is not DeadlineConnection:
            pool.connection_class = DeadlineConnection
            if pool._check is not None:
                pool._check = _check_pooled
        return pool

    def get_new_connection(self, conn_params):
        _breaker.check()
        try:
            connection = super().get_new_connection(conn_params)
        except psycopg.Error:
            _breaker.failed()
            raise
        _breaker.succeeded()
        if type(connection) is psycopg.Connection:
            connection.__class__ = DeadlineConnection  # same layout, one method more
            connection.portail_deadline = settings.PORTAIL_DB_WAIT_SECONDS
        return connection

    def is_usable(self):
        # The health check of a reused connection (CONN_HEALTH_CHECKS) is one SELECT 1.
        connection = self.connection
        if not isinstance(connection, DeadlineConnection):
            return super().is_usable()
        connection.portail_deadline = settings.PORTAIL_DB_HEALTH_CHECK_SECONDS
        try:
            return super().is_usable()
        finally:
            connection.portail_deadline = settings.PORTAIL_DB_WAIT_SECONDS
