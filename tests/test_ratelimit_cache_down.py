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
