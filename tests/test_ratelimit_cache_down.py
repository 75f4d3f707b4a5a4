"""A rate limit whose cache cannot be reached: an account's counters refuse (fail closed), the
others let the request through (fail open), in every entry point of portail.security.ratelimit.

The cache is a real Redis client pointed at a loopback port nobody listens on: every call fails
with redis-py's own ConnectionError, as when Redis restarts under a node.
"""

import pytest
from django.core.cache.backends.redis import RedisCache

from portail.security import ratelimit
from tests.servers import free_port


@pytest.fixture
def unreachable_cache(monkeypatch):
    node = RedisCache(f"redis://127.0.0.1:{free_port()}/0", {"KEY_PREFIX": "down"})
    monkeypatch.setattr(ratelimit, "cache", node)
    return node


def test_an_account_rule_refuses_while_the_cache_is_down(unreachable_cache, caplog):
    rule = "account:user"
    assert rule in ratelimit.FAIL_CLOSED
    for call in (ratelimit.count_of, ratelimit.check, ratelimit.add, ratelimit.hit):
        with pytest.raises(ratelimit.RateLimited) as refused:
            call(rule, "jean.dupont")
        assert refused.value.retry_after == ratelimit.CACHE_DOWN_RETRY
    assert sum("cache unavailable" in r.getMessage() for r in caplog.records) == 4


def test_other_rules_let_requests_through_while_the_cache_is_down(unreachable_cache, caplog):
    rule = "login:address"
    assert rule not in ratelimit.FAIL_CLOSED
    assert ratelimit.count_of(rule, "ip:203.0.113.5") == 0
    ratelimit.check(rule, "ip:203.0.113.5")
    assert ratelimit.add(rule, "ip:203.0.113.5") == 0
    ratelimit.hit(rule, "ip:203.0.113.5")
    ratelimit.clear(rule, "ip:203.0.113.5")
    assert sum("cache unavailable" in r.getMessage() for r in caplog.records) == 5


def test_guard_refuses_for_an_account_rule_while_the_cache_is_down(unreachable_cache, caplog):
    # guard() reads all its rules in one round trip: the fail-open rule before the account's
    # rule is logged and let through, the account's rule still refuses.
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.guard({"login:address": "ip:203.0.113.5", "account:user": "jean.dupont"})
    assert refused.value.retry_after == ratelimit.CACHE_DOWN_RETRY
    assert sum("cache unavailable" in r.getMessage() for r in caplog.records) == 2
    ratelimit.guard({"login:address": "ip:203.0.113.5", "account:user": ""})  # fail open


def test_guard_answers_as_check_does_for_each_rule(settings):
    # The real cache: guard() batches the reads but keeps check()'s counters and thresholds.
    from django.core.cache import cache

    settings.PORTAIL_RATE_LIMITS = {
        **settings.PORTAIL_RATE_LIMITS,
        "test:a": (3, 600),
        "test:b": (2, 600),
    }
    cache.clear()
    rules = {"test:a": "client-1", "test:b": "ip:203.0.113.7"}
    ratelimit.guard(rules)
    ratelimit.add("test:b", "ip:203.0.113.7")
    ratelimit.guard(rules)  # 1 of 2
    ratelimit.add("test:b", "ip:203.0.113.7")
    with pytest.raises(ratelimit.RateLimited) as by_guard:
        ratelimit.guard(rules)  # the second rule is spent, the first is not
    with pytest.raises(ratelimit.RateLimited) as by_check:
        ratelimit.check("test:b", "ip:203.0.113.7")
    assert abs(by_guard.value.retry_after - by_check.value.retry_after) <= 1
    ratelimit.check("test:a", "client-1")
    ratelimit.guard({"test:a": "client-1", "test:b": "ip:203.0.113.8"})  # another address passes
