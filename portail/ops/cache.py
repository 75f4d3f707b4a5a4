"""A Redis cache that may vanish at any moment: bounded calls, a circuit breaker, never an exception.

Redis is a cache here (sessions are written through to the database, throttling falls back to it):
when it is down or frozen, a page must be served from PostgreSQL, not wait for Redis or answer 500.

- every call is bounded: connect and read timeouts (PORTAIL_CACHE_TIMEOUT_MS, ≤ 100 ms), no retry,
  and a connection pool whose wait for a free connection is bounded by the same timeout;
- after PORTAIL_CACHE_BREAKER_ERRORS consecutive errors the breaker opens: Redis is skipped for
  PORTAIL_CACHE_BREAKER_SECONDS, then one call probes it (closed again on success);
- an error, or a call skipped by the open breaker, is a miss (`get` → default, `add` → False, `incr`
  → ValueError as for a missing key) or a no-op (`set`, `delete`); it is counted in the metrics and
  logged once per trip, never raised.

The breaker is per process: each worker finds out by itself, after a few bounded calls.
"""

import logging
import threading
import time

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from portail.ops import metrics

log = logging.getLogger("portail.ops.cache")

# Marks a failed call where None is a genuine answer.
_MISS = object()


class CircuitBreaker:
    """closed → (K consecutive errors) → open for T s → half-open: one probe → closed or open."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

    def __init__(self, name: str, errors: int, seconds: float, clock=time.monotonic):
        self.name = name
        self.max_errors = max(1, errors)
        self.seconds = seconds
        self.clock = clock
        self.state = self.CLOSED
        self.errors = 0
        self.opened_at = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """May this call go to Redis? In half-open state only one probe at a time does."""
        with self._lock:
            if self.state == self.CLOSED:
                return True
            if self.state == self.OPEN and self.clock() - self.opened_at >= self.seconds:
                self.state = self.HALF_OPEN
                return True  # this call is the probe
            return False

    def succeeded(self):
        with self._lock:
            self.errors = 0
            if self.state != self.CLOSED:
                self.state = self.CLOSED
                metrics.CACHE_BREAKER_OPEN.labels(self.name).set(0)
                log.warning("cache %s: Redis répond de nouveau, le cache est réutilisé", self.name)

    def failed(self, error: Exception):
        with self._lock:
            self.errors += 1
            if self.state == self.HALF_OPEN or (
                self.state == self.CLOSED and self.errors >= self.max_errors
            ):
                tripped = self.state == self.CLOSED
                self.state = self.OPEN
                self.opened_at = self.clock()
                if tripped:  # logged once per trip, not at each failed probe
                    metrics.CACHE_BREAKER_TRIPS.labels(self.name).inc()
                    metrics.CACHE_BREAKER_OPEN.labels(self.name).set(1)
                    log.warning(
                        "cache %s: Redis injoignable (%s: %s), contourné pendant %s s puis sondé",
                        self.name,
                        type(error).__name__,
                        error,
                        self.seconds,
                    )


class ReusedClientCacheClient(RedisCacheClient):
    """Django's RedisCacheClient, with one redis.Redis per connection pool instead of one per call.

    Django builds a new `redis.Redis` for every cache operation (`get_client`), and redis-py's
    constructor fills a table of ~170 response callbacks each time: 0.2–0.3 ms of CPU per call,
    two calls per login (bench/README.md, « Login CPU »). A `redis.Redis` holds no connection of
    its own (it borrows one from the pool per command) and is safe to share between threads
    (redis-py's documentation), so one per pool does the same work with the same pool, the same
    timeouts and the same errors.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None or client.connection_pool is not pool:
            # Two threads may both build one at first: either serves, the pool is the same.
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ResilientRedisCache(RedisCache):
    """Django's RedisCache whose every operation is bounded and whose errors are misses."""

    def __init__(self, server, params):
        params = dict(params)
        options = dict(params.get("OPTIONS") or {})
        timeout = options.pop("timeout_ms", settings.PORTAIL_CACHE_TIMEOUT_MS) / 1000
        options.setdefault("socket_connect_timeout", timeout)
        options.setdefault("socket_timeout", timeout)
        # A frozen Redis must not be retried: one bounded attempt, then the breaker decides.
        options.setdefault("retry", Retry(NoBackoff(), 0))
        # Threads of one process share a bounded pool and wait at most `timeout` for a connection.
        options.setdefault("pool_class", "redis.BlockingConnectionPool")
        options.setdefault("max_connections", 50)
        options.setdefault("timeout", timeout)
        options.setdefault("health_check_interval", 30)
        params["OPTIONS"] = options
        super().__init__(server, params)
        self._class = ReusedClientCacheClient
        self.breaker = CircuitBreaker(
            params.get("BREAKER_NAME", "default"),
            settings.PORTAIL_CACHE_BREAKER_ERRORS,
            settings.PORTAIL_CACHE_BREAKER_SECONDS,
        )

    def _guarded(self, operation, miss, call, *args, **kwargs):
        if not self.breaker.allow():
            metrics.CACHE_SKIPPED.labels(operation).inc()
            return miss() if callable(miss) else miss
        try:
            result = call(*args, **kwargs)
        except (RedisError, OSError) as error:
            metrics.CACHE_ERRORS.labels(operation).inc()
            self.breaker.failed(error)
            return miss() if callable(miss) else miss
        self.breaker.succeeded()
        return result

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guarded("add", False, super().add, key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._guarded("get", default, super().get, key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guarded("set", None, super().set, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guarded("touch", False, super().touch, key, timeout, version)

    def delete(self, key, version=None):
        return self._guarded("delete", False, super().delete, key, version)

    def get_many(self, keys, version=None):
        return self._guarded("get_many", dict, super().get_many, keys, version)

    def has_key(self, key, version=None):
        return self._guarded("has_key", False, super().has_key, key, version)

    def incr(self, key, delta=1, version=None):
        result = self._guarded("incr", _MISS, super().incr, key, delta, version)
        if result is _MISS:
            # What Django answers for a key that is not there: callers already handle it.
            raise ValueError(f"Key '{key}' not found (cache unavailable)")
        return result

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        data = dict(data)
        failed = self._guarded("set_many", _MISS, super().set_many, data, timeout, version)
        return list(data) if failed is _MISS else failed

    def delete_many(self, keys, version=None):
        return self._guarded("delete_many", None, super().delete_many, keys, version)

    def clear(self):
        return self._guarded("clear", False, super().clear)
