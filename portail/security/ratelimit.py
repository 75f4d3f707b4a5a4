"""Fixed-window counters in Django's cache (Redis in production, shared by every node).

Rules are named in settings.PORTAIL_RATE_LIMITS as (max attempts, window seconds).
"""

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache


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


def _window(rule: str):
    limit, window = settings.PORTAIL_RATE_LIMITS[rule]
    now = time.time()
    start = int(now // window * window)
    return limit, window, start, int(start + window - now) + 1


def check(rule: str, value) -> None:
    """Raise RateLimited if the rule's budget for this value is spent (does not count)."""
    if not value:
        return
    limit, window, start, retry_after = _window(rule)
    if (cache.get(f"{_key(rule, value)}:{start}") or 0) >= limit:
        raise RateLimited(retry_after)


def hit(rule: str, value) -> None:
    """Count one attempt; raise RateLimited if it goes over the budget."""
    if not value:
        return
    limit, window, start, retry_after = _window(rule)
    key = f"{_key(rule, value)}:{start}"
    cache.add(key, 0, window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window + 1)
        count = 1
    if count > limit:
        raise RateLimited(retry_after)


def clear(rule: str, value) -> None:
    if not value:
        return
    _, _, start, _ = _window(rule)
    cache.delete(f"{_key(rule, value)}:{start}")


def guard(rules: dict) -> None:
    """check() several {rule: value} at once, before any work is done."""
    for rule, value in rules.items():
        check(rule, value)


def count(rules: dict) -> None:
    for rule, value in rules.items():
        hit(rule, value)
