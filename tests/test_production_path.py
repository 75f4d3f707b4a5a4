"""The production path: Redis for cache, sessions and rate limits, shared by several nodes.

Two kinds of tests:
- in process, with two independent Redis cache clients standing for two app nodes;
- two real `portail serve` (gunicorn) servers, two "nodes", on PostgreSQL + Redis, configured only from the
  environment as in production behind a TLS-terminating proxy, driven over HTTP.

Outside CI a missing PostgreSQL or Redis skips these tests; under CI=true it fails them.
"""

import contextlib
import html
import importlib
import os
import re
import secrets

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.cache.backends.redis import RedisCache

from portail.security import ratelimit
from portail.typography import normalised
from tests import servers
from tests.helpers import STRONG_PASSWORD, WRONG
from tests.servers import POSTGRES_URL

# Database 15 is the tests' own: never the one a developer's portal uses (0).
REDIS_URL = os.environ.get("PORTAIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# What portail/settings.py picks with REDIS_URL: sessions read from Redis, written through to the
# database (checked against the real settings by test_redis_url_selects_the_shared_session_engine).
PRODUCTION_SESSION_ENGINE = "portail.security.sessions_cached"
SESSION_CACHE_PREFIX = importlib.import_module(
    PRODUCTION_SESSION_ENGINE
).SessionStore.cache_key_prefix


# --- Two cache clients in one process ---------------------------------------------------------


@pytest.fixture
def key_prefix():
    """A prefix of our own in Redis db 15, removed afterwards (other runs may share the db)."""
    servers.require("redis")
    prefix = f"portail-test-{secrets.token_hex(6)}"
    yield prefix
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def redis_node(prefix):
    # What each app node builds from REDIS_URL: its own client and connection pool.
    return RedisCache(REDIS_URL, {"KEY_PREFIX": prefix})


@pytest.fixture
def redis_settings(settings, key_prefix):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": key_prefix,
        }
    }
    settings.SESSION_ENGINE = PRODUCTION_SESSION_ENGINE
    return settings


def test_rate_limit_counters_are_shared_by_two_nodes(key_prefix, settings, monkeypatch):
    node_a, node_b = redis_node(key_prefix), redis_node(key_prefix)
    limit, _window = settings.PORTAIL_RATE_LIMITS["account:user"]
    monkeypatch.setattr(ratelimit, "cache", node_a)
    for _ in range(limit):
        ratelimit.hit("account:user", "jean.dupont")
    monkeypatch.setattr(ratelimit, "cache", node_b)
    with pytest.raises(ratelimit.RateLimited) as exc:
        ratelimit.check("account:user", "jean.dupont")
    assert 1 <= exc.value.minutes <= 120
    ratelimit.check("account:user", "marie.curie")  # other accounts are not affected
    # A success on node B clears the counter for node A too.
    ratelimit.clear("account:user", "jean.dupont")
    monkeypatch.setattr(ratelimit, "cache", node_a)
    ratelimit.check("account:user", "jean.dupont")


@pytest.mark.django_db
def test_an_address_over_budget_on_one_node_gets_the_challenge_on_the_other(
    client, active_user, key_prefix, settings, monkeypatch
):
    node_a, node_b = redis_node(key_prefix), redis_node(key_prefix)
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "login:address": (3, 900)}
    monkeypatch.setattr(ratelimit, "cache", node_a)
    for _ in range(3):
        response = client.post("/auth/login", {"identifier": "jean.dupont", "password": "non"})
        assert WRONG in normalised(html.unescape(response.content.decode()))
    monkeypatch.setattr(ratelimit, "cache", node_b)
    response = client.post(
        "/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD}
    )
    assert response.status_code == 200 and "portail-challenge" in response.content.decode()


@pytest.mark.django_db
def test_sessions_live_in_redis_and_die_there_at_logout(client, active_user, redis_settings):
    import redis
    from django.contrib.sessions.models import Session

    response = client.post(
        "/auth/login", {"identifier": "jean.dupont", "password": STRONG_PASSWORD}
    )
    assert response.status_code == 302
    from portail.security.sessions import stored_session_key

    # Stored under the keyed digest of the cookie's key, never the key itself.
    session_key = stored_session_key(client.cookies[redis_settings.SESSION_COOKIE_NAME].value)
    # Any other node reads the same session from Redis ...
    other_node = redis_node(redis_settings.CACHES["default"]["KEY_PREFIX"])
    stored = other_node.get(SESSION_CACHE_PREFIX + session_key)
    assert stored[SESSION_KEY] == str(active_user.pk)
    raw = redis.Redis.from_url(REDIS_URL)
    assert raw.ttl(f"{other_node.key_prefix}:1:{SESSION_CACHE_PREFIX}{session_key}") > 0
    # ... and it is written through to the database (a Redis restart logs nobody out).
    assert Session.objects.filter(session_key=session_key).exists()
    assert client.get("/").status_code == 200

    client.post("/auth/logout")
    assert other_node.get(SESSION_CACHE_PREFIX + session_key) is None
    assert not Session.objects.filter(session_key=session_key).exists()
    raw.close()


def test_redis_url_selects_the_shared_session_engine():
    code = (
        "import portail.settings as s; "
        "print(s.SESSION_ENGINE, s.CACHES['default']['BACKEND'], s.CACHES['default']['LOCATION'])"
    )
    out = servers.python_output(code, PORTAIL_DEBUG="1", REDIS_URL=REDIS_URL).split()
    assert out == [
        PRODUCTION_SESSION_ENGINE,
        "portail.ops.cache.ResilientRedisCache",  # Django's RedisCache, bounded (ops.cache)
        REDIS_URL,
    ]


# --- Two `portail serve` nodes on PostgreSQL + Redis --------------------------------------------------


class Node(servers.ProxiedClient):
    """A browser-less HTTP client to one node, as if through the region's TLS proxy."""

    user_agent = "production-path-test"


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    servers.require("postgres", "redis")
    identifier = f"prod.path{secrets.randbelow(10**6)}"
    logs = tmp_path_factory.mktemp("logs")
    with contextlib.ExitStack() as stack:
        # Redis keys (sessions, counters for a random identifier) expire by themselves.
        dbname = stack.enter_context(servers.postgres_database("portail_prodpath"))
        env = servers.portail_env(
            tmp_path_factory.mktemp("var"),
            DATABASE_URL=f"{POSTGRES_URL}/{dbname}",
            REDIS_URL=REDIS_URL,
            PORTAIL_BASE_URL="https://127.0.0.1",
            PORTAIL_BEHIND_PROXY="1",
            PORTAIL_ALLOWED_HOSTS="127.0.0.1",
        )
        servers.manage(env, "migrate", "--noinput")
        servers.create_user(env, identifier, STRONG_PASSWORD, "Prod", "Path", email="p@example.org")
        ports = []
        for number in range(2):
            # `portail serve`: gunicorn, as in production. The first node collects the static
            # files (the default); the second shares them.
            server = servers.PortailServer(
                env,
                logs / f"node{number}.log",
                args=["--no-collectstatic"] if number else [],
                ready="/healthz",
            )
            ports.append(stack.enter_context(server).port)
        yield {
            "ports": ports,
            "identifier": identifier,
            "dbname": dbname,
            "secret_key": env["PORTAIL_SECRET_KEY"],
        }


def csrf_ready(node, path="/auth/login"):
    page = node.request(path)
    assert page.status == 200
    return page


@pytest.mark.postgres
def test_two_nodes_share_sessions_through_redis(production):
    import redis

    jar = {}
    node_a, node_b = (Node(port, jar) for port in production["ports"])

    # Plain HTTP that did not come through the proxy is sent to HTTPS.
    redirect = node_a.request("/auth/login", proxied=False)
    assert redirect.status == 301 and redirect.headers["Location"].startswith("https://")

    page = csrf_ready(node_a)
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Connexion" in page.text
    assert re.search(r'href="/static/portail/css/portail\.[0-9a-f]{12}\.css"', page.text)

    home = node_a.request(
        "/auth/login", {"identifier": production["identifier"], "password": STRONG_PASSWORD}
    )
    assert home.status == 302 and home.headers["Location"] == "/"
    assert "portail_session" in jar
    set_cookie = " ".join(home.headers.get_all("Set-Cookie"))
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie

    # The session is read from Redis (written through to PostgreSQL) ...
    raw = redis.Redis.from_url(REDIS_URL)
    from django.test import override_settings

    from portail.security.sessions import stored_session_key

    with override_settings(SECRET_KEY=production["secret_key"]):  # the nodes' key
        digest = stored_session_key(jar["portail_session"])
    session_key = f"portail:1:{SESSION_CACHE_PREFIX}{digest}"
    assert raw.exists(session_key)
    # ... so the session opened on node A is known to node B.
    on_b = node_b.request("/")
    assert on_b.status == 200 and "Prod Path" in on_b.text
    assert "no-store" in on_b.headers["Cache-Control"]

    # Logging out on node B ends it for node A too (logged in, /auth/login would send home: the
    # home page's logout form gives the CSRF token).
    csrf_ready(node_b, "/")
    stolen = jar["portail_session"]
    node_b.request("/auth/logout", {})
    assert "portail_session" not in jar
    jar["portail_session"] = stolen  # replayed: the server side must be gone, not just the cookie
    back_on_a = node_a.request("/")
    assert back_on_a.status == 302 and "/auth/login" in back_on_a.headers["Location"]
    assert not raw.exists(session_key)
    raw.close()


@pytest.mark.postgres
def test_two_nodes_share_the_account_lockout(production):
    import psycopg

    jar = {}
    node_a, node_b = (Node(port, jar) for port in production["ports"])
    csrf_ready(node_a)
    for _ in range(5):  # CNIL 2022-100 (cas n° 2): 5 consecutive failures, then a delay
        failed = node_a.request(
            "/auth/login", {"identifier": production["identifier"], "password": "pas le bon"}
        )
        assert failed.status == 200 and WRONG in normalised(html.unescape(failed.text))
    locked = node_b.request(
        "/auth/login", {"identifier": production["identifier"], "password": STRONG_PASSWORD}
    )
    page = normalised(html.unescape(locked.text))
    assert locked.status == 200 and "Trop d'essais infructueux" in page
    assert "Besoin d'aide ?" in page

    # The lock and the audit trail are in PostgreSQL, with the client IP the proxy vouched for.
    with psycopg.connect(f"{POSTGRES_URL}/{production['dbname']}") as conn:
        rows = conn.execute(
            "SELECT count(*), min(host(ip)) FROM audit_event WHERE tag = 'account.login.failed'"
        ).fetchone()
        locked_rows = conn.execute(
            "SELECT count(*) FROM security_loginfailures WHERE locked_until > now()"
        ).fetchone()
    assert rows == (5, "203.0.113.7") and locked_rows == (1,)


@pytest.mark.postgres
def test_junk_forwarded_for_is_counted_not_a_500_on_the_real_server(production):
    import psycopg

    node = Node(production["ports"][0], {})
    node.forwarded = "203.0.113.7, n'importe quoi"  # the last hop is not an address
    csrf_ready(node)
    response = node.request(
        "/auth/login", {"identifier": "personne.inconnue", "password": "pas le bon"}
    )
    assert response.status == 200 and WRONG in normalised(html.unescape(response.text))
    # Counted against the proxy that passed it on (here the loopback peer), in the audit too.
    with psycopg.connect(f"{POSTGRES_URL}/{production['dbname']}") as conn:
        (ip,) = conn.execute(
            "SELECT host(ip) FROM audit_event WHERE tag = 'account.login.failed' "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert ip == "127.0.0.1"
