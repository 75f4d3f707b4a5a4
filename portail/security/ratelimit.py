"""Sliding-window counters in Django's cache (Redis in production, shared by every node).

Rules are named in settings.PORTAIL_RATE_LIMITS as (max attempts, window seconds). A window does
not reset all at once: the count is this bucket's plus the previous bucket's weighted by how much
of it still lies inside the window (the two-bucket approximation of a sliding log), so a burst
at 8:14 still counts at 8:16.

The cache may vanish at any moment (a Redis restart): an error never raises. It answers "not
limited" (and logs), except for the rules in FAIL_CLOSED, which guard an account's secret and
refuse until the cache is back. Account lockout itself lives in the database (throttle.py).
"""

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)

# Account counters whose loss would allow unlimited guessing: refuse while the cache is down.
FAIL_CLOSED = {"console-otp:user", "account:user"}
# Seconds to wait when the cache is down for a FAIL_CLOSED rule.
CACHE_DOWN_RETRY = 60


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))


def _key(rule: str, value: str) -> str:
    # The value (an identifier, an address) is hashed: the cache holds no personal data.
    return "rl:" + rule + ":" + hashlib.sha256(str(value).encode()).hexdigest()[:32]


def _buckets(rule: str, value, now: float):
    limit, window = settings.PORTAIL_RATE_LIMITS[rule]
    index = int(now // window)
    base = _key(rule, value)
    weight = 1 - (now - index * window) / window  # share of the previous bucket still inside
    return limit, window, f"{base}:{index}", f"{base}:{index - 1}", weight


def _estimate(current: int, previous: int, weight: float) -> float:
    return current + previous * weight


def _retry_after(limit, window, current, previous, now) -> int:
    """Seconds until the sliding count falls under the limit, if nothing more is counted."""
    elapsed = now % window
    if current >= limit:
        # This bucket becomes the previous one; its weight must fall under limit/current.
        wait = (window - elapsed) + window * (1 - limit / current)
    else:
        # The previous bucket's weight must fall under (limit - current) / previous.
        wait = window * (1 - (limit - current) / previous) - elapsed
    return max(1, math.ceil(wait) + 1)


def _cache_down(rule: str) -> None:
    """The cache failed: log it; refuse (RateLimited) for a FAIL_CLOSED rule, else let it pass."""
    log.warning("rate limit %s: cache unavailable", rule, exc_info=True)
    if rule in FAIL_CLOSED:
        raise RateLimited(CACHE_DOWN_RETRY) from None


def _read(rule: str, current_key: str, previous_key: str) -> tuple[int, int] | None:
    """The two buckets' counts, or None when the cache cannot answer (a fail-open rule)."""
    try:
        found = cache.get_many([current_key, previous_key])
    except Exception:
        _cache_down(rule)
        return None
    return found.get(current_key) or 0, found.get(previous_key) or 0


def count_of(rule: str, value, now: float | None = None) -> float:
    """The sliding count for this value (0 when the cache cannot answer)."""
    if not value:
        return 0
    now = time.time() if now is None else now
    _, _, current_key, previous_key, weight = _buckets(rule, value, now)
    counts = _read(rule, current_key, previous_key)
    return 0 if counts is None else _estimate(*counts, weight)


def check(rule: str, value) -> None:
    """Raise RateLimited if the rule's budget for this value is spent (does not count)."""
    if not value:
        return
    now = time.time()
    limit, window, current_key, previous_key, weight = _buckets(rule, value, now)
    counts = _read(rule, current_key, previous_key)
    if counts is None:
        return
    current, previous = counts
    if _estimate(current, previous, weight) >= limit:
        raise RateLimited(_retry_after(limit, window, current, previous, now))


def add(rule: str, value, amount: int = 1) -> float:
    """Count `amount` attempts; return the new sliding count (0 if the cache cannot answer)."""
    if not value:
        return 0
    now = time.time()
    limit, window, current_key, previous_key, weight = _buckets(rule, value, now)
    try:
        cache.add(current_key, 0, 2 * window + 1)  # lives on as the next window's "previous"
        try:
            current = cache.incr(current_key, amount)
        except ValueError:  # expired between add and incr
            cache.set(current_key, amount, 2 * window + 1)
            current = amount
        previous = cache.get(previous_key) or 0
    except RateLimited:
        raise
    except Exception:
        _cache_down(rule)
        return 0
    return _estimate(current, previous, weight)


def hit(rule: str, value) -> None:
    """Count one attempt; raise RateLimited if it goes over the budget."""
    if not value:
        return
    now = time.time()
    limit, window, current_key, previous_key, weight = _buckets(rule, value, now)
    total = add(rule, value)
    if total > limit:
        try:
            previous = cache.get(previous_key) or 0
        except Exception:
            previous = 0
        current = total - previous * weight
        raise RateLimited(_retry_after(limit, window, current, previous, now))


def clear(rule: str, value) -> None:
    if not value:
        return
    _, _, current_key, previous_key, _ = _buckets(rule, value, time.time())
    try:
        cache.delete_many([current_key, previous_key])
    except Exception:
        log.warning("rate limit %s: cache unavailable", rule, exc_info=True)


def guard(rules: dict) -> None:
    """check() several {rule: value} at once, before any work is done.

    Same answer as calling check() for each rule in order (same counters, same thresholds, the
    first spent budget raises, a FAIL_CLOSED rule refuses while the cache is down), but in one
    cache round trip instead of one per rule.
    """
    now = time.time()
    buckets = [(rule, _buckets(rule, value, now)) for rule, value in rules.items() if value]
    if not buckets:
        return
    keys = [key for _, b in buckets for key in (b[2], b[3])]
    try:
        found = cache.get_many(keys)
    except Exception:
        for rule, _ in buckets:
            _cache_down(rule)  # raises for the first FAIL_CLOSED rule, as check() would
        return
    for _rule, (limit, window, current_key, previous_key, weight) in buckets:
        current, previous = found.get(current_key) or 0, found.get(previous_key) or 0
        if _estimate(current, previous, weight) >= limit:
            raise RateLimited(_retry_after(limit, window, current, previous, now))


def count(rules: dict) -> None:
    for rule, value in rules.items():
        hit(rule, value)
