"""Redis down or frozen: pages and logins keep working from the database, and Redis is used again
once it is back (issue 8 §2).

Each test starts its own `redis-server` on a free port and kills it (SIGKILL) or freezes it
(SIGSTOP) while real requests run: through Django's test client, and through a real
`portail serve` (gunicorn) subprocess configured with REDIS_URL. Durations are printed, not
asserted (they are figures of a shared machine); a request that would hang without the bounded
calls fails the test by not answering at all within a generous watchdog.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import override_settings

from portail.ops import metrics
from portail.ops.cache import CircuitBreaker, ResilientRedisCache
from portail.security.sessions import stored_session_key
from tests import servers
from tests.helpers import STRONG_PASSWORD, login

# Without bounded calls a frozen Redis blocks a request for ever: past this, it did not answer.
WATCHDOG_SECONDS = 30


def need(what: str, present: bool):
    """A missing part skips outside CI and fails under CI=true (as tests/require_services.py)."""
    if present:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: {what} not available", pytrace=False)
    pytest.skip(f"{what} not available")


class RedisServer:
    """A redis-server of the test's own, on a free port, that the test can kill or freeze."""

    def __init__(self, directory: Path):
        need("redis-server", shutil.which("redis-server") is not None)
        self.port = servers.free_port()
        self.directory = directory
        self.process = None
        self.frozen = False

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def kill(self):
        self.process.kill()
        self.process.wait()

    def freeze(self):
        os.kill(self.process.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        os.kill(self.process.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self):
        if self.process and self.process.poll() is None:
            if self.frozen:
                self.thaw()
            self.process.terminate()
            self.process.wait(timeout=10)

    def stored_keys(self, pattern="*"):
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            return [key.decode() for key in client.keys(pattern)]
        finally:
            client.close()


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


class NoAnswer(Exception):
    pass


def answered(call, *args, **kwargs):
    """call(*args) in this thread (the test database is this thread's): (result, seconds), or a
    failure if it has not answered within WATCHDOG_SECONDS (SIGALRM interrupts a blocked socket)."""
    return within(WATCHDOG_SECONDS, call, *args, **kwargs)


def within(limit, call, *args, **kwargs):
    """(call(*args), seconds), or NoAnswer raised if it has not answered within `limit` seconds."""

    def expired(signum, frame):
        raise NoAnswer(f"no answer within {limit} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, limit)
    started = time.perf_counter()
    try:
        result = call(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return result, time.perf_counter() - started


def wait_until(condition, seconds=15):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def sample(metric, *labels):
    return metric.labels(*labels)._value.get()


# --- The breaker, alone ------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_errors_and_closes_after_one_good_probe():
    now = [0.0]
    breaker = CircuitBreaker("unit", errors=3, seconds=5, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow()
        breaker.failed(ConnectionError("x"))
    assert breaker.state == breaker.CLOSED
    breaker.succeeded()  # a success resets the count: errors must be consecutive
    for _ in range(3):
        breaker.failed(ConnectionError("x"))
    assert breaker.state == breaker.OPEN and not breaker.allow()
    now[0] = 5.0
    assert breaker.allow()  # the one probe ...
    assert not breaker.allow()  # ... and nobody else while it runs
    breaker.failed(ConnectionError("still down"))
    assert breaker.state == breaker.OPEN and not breaker.allow()
    now[0] = 10.0
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == breaker.CLOSED and breaker.allow()


# --- The cache backend against a real redis-server --------------------------------------------


def make_cache(server, settings):
    settings.PORTAIL_CACHE_BREAKER_SECONDS = 1
    return ResilientRedisCache(server.url, {"KEY_PREFIX": "t"})


def test_a_stopped_redis_gives_misses_and_no_ops_never_an_error(redis_server, settings, caplog):
    node = make_cache(redis_server, settings)
    node.set("k", "v", 60)
    assert node.get("k") == "v"
    errors_before = sample(metrics.CACHE_ERRORS, "get")

    redis_server.kill()
    assert node.get("k", "default") == "default"
    assert node.add("a", 1) is False
    node.set("k", "w")  # no-op, no exception
    assert node.delete("k") is False
    assert node.get_many(["k", "a"]) == {}
    assert node.set_many({"x": 1, "y": 2}) == ["x", "y"]
    with pytest.raises(ValueError):
        node.incr("counter")  # what Django answers for a missing key: callers handle it
    assert node.has_key("k") is False
    assert node.breaker.state == CircuitBreaker.OPEN
    assert sample(metrics.CACHE_ERRORS, "get") == errors_before + 1
    assert sample(metrics.CACHE_BREAKER_OPEN, "default") == 1
    # Logged once per trip, not at every call.
    trips = [r for r in caplog.records if "injoignable" in r.getMessage()]
    assert len(trips) == 1

    # Back (same port, empty): after the breaker's pause, one probe, then used again.
    redis_server.start()
    wait_until(lambda: node.add("back", 1, 60))
    assert node.breaker.state == CircuitBreaker.CLOSED
    node.set("k", "again", 60)
    assert node.get("k") == "again"
    assert sample(metrics.CACHE_BREAKER_OPEN, "default") == 0


def test_one_redis_client_per_pool_serves_every_call_across_a_restart(redis_server, settings):
    node = make_cache(redis_server, settings)
    client = node._cache.get_client(write=True)
    # Django built a redis.Redis per call; one per pool now (ops.cache.ReusedClientCacheClient).
    assert node._cache.get_client(write=False) is client
    node.set("k", "v", 60)
    assert node.get("k") == "v" and node._cache.get_client() is client
    redis_server.kill()
    assert node.get("k", "gone") == "gone"
    redis_server.start()
    wait_until(lambda: node.add("back", 1, 60))
    node.set("k", "again", 60)
    assert node.get("k") == "again" and node._cache.get_client() is client


def test_a_frozen_redis_costs_bounded_calls_then_none(redis_server, settings):
    node = make_cache(redis_server, settings)
    node.set("k", "v", 60)
    redis_server.freeze()
    durations = []
    for _ in range(6):
        value, seconds = answered(node.get, "k")
        assert value is None
        durations.append(seconds)
    assert node.breaker.state == CircuitBreaker.OPEN
    print(
        "frozen Redis, cache.get durations (ms):", [round(d * 1000) for d in durations], "(shared)"
    )

    redis_server.thaw()
    wait_until(lambda: node.get("k") == "v")
    assert node.breaker.state == CircuitBreaker.CLOSED


# --- Pages through Django's test client ---------------------------------------------------------


@pytest.fixture
def redis_cache(settings, redis_server):
    """The production configuration (REDIS_URL) against our redis-server."""
    settings.CACHES = {
        "default": {
            "BACKEND": "portail.ops.cache.ResilientRedisCache",
            "LOCATION": redis_server.url,
            "KEY_PREFIX": "portail",
        }
    }
    settings.SESSION_ENGINE = "portail.security.sessions_cached"
    settings.PORTAIL_CACHE_BREAKER_SECONDS = 1
    yield redis_server
    cache.close()


def timed(call, *args, **kwargs):
    response, seconds = answered(call, *args, **kwargs)
    response.seconds = seconds
    return response


@pytest.mark.django_db
@pytest.mark.parametrize("outage", ["killed", "frozen"])
def test_login_pages_and_logout_work_while_redis_is_out(client, active_user, redis_cache, outage):
    response = login(client, "jean.dupont", STRONG_PASSWORD)
    assert response.status_code == 302
    assert any(":portail.sessions:" in k for k in redis_cache.stored_keys())

    if outage == "killed":
        redis_cache.kill()
    else:
        redis_cache.freeze()
    seen = []
    # The session is read from the database; the page, the logout and a new login all work.
    page = timed(client.get, "/")
    seen.append(("page", page.status_code, page.seconds))
    assert page.status_code == 200 and "Jean" in page.content.decode()
    out = timed(client.post, "/auth/logout")
    seen.append(("logout", out.status_code, out.seconds))
    assert out.status_code == 302
    gone = timed(client.get, "/")
    assert gone.status_code == 302 and "/auth/login" in gone["Location"]
    failed = timed(login, client, "jean.dupont", "pas le bon")
    seen.append(("failed login", failed.status_code, failed.seconds))
    assert failed.status_code == 200
    again = timed(login, client, "jean.dupont", STRONG_PASSWORD)
    seen.append(("login", again.status_code, again.seconds))
    assert again.status_code == 302
    page = timed(client.get, "/")
    seen.append(("page", page.status_code, page.seconds))
    assert page.status_code == 200
    print(f"Redis {outage}:", [(n, s, f"{t * 1000:.0f} ms") for n, s, t in seen], "(shared load)")

    # Back: the next sessions are in Redis again.
    if outage == "killed":
        redis_cache.start()
    else:
        redis_cache.thaw()
    client.post("/auth/logout")
    time.sleep(1.1)  # the breaker's pause (PORTAIL_CACHE_BREAKER_SECONDS = 1)

    def session_in_redis():
        login(client, "jean.dupont", STRONG_PASSWORD)
        key = stored_session_key(client.cookies["portail_session"].value)
        return any(k.endswith(key) for k in redis_cache.stored_keys())

    wait_until(session_in_redis)


# --- A real `portail serve` with REDIS_URL ---------------------------------------------------------


def serve_env(tmp_path, **extra):
    """As in production behind the TLS proxy (tests.test_production_path.Node speaks as it)."""
    return servers.portail_env(
        tmp_path / "var",
        PORTAIL_BASE_URL="https://127.0.0.1",
        PORTAIL_BEHIND_PROXY="1",
        PORTAIL_ALLOWED_HOSTS="127.0.0.1",
        PORTAIL_CACHE_BREAKER_SECONDS="1",
        **extra,
    )


def create_user(env, identifier):
    servers.create_user(env, identifier, STRONG_PASSWORD, "Prod", "Faults", email="p@example.org")


def logged_in(server, identifier="prod.faults"):
    """A client of `server` (as through the TLS proxy) logged in: (node, cookie jar, credentials)."""
    from tests.test_production_path import Node

    jar = {}
    node = Node(server.port, jar)
    assert node.request("/auth/login").status == 200
    credentials = {"identifier": identifier, "password": STRONG_PASSWORD}
    assert node.request("/auth/login", credentials).status == 302
    return node, jar, credentials


def test_portail_serve_keeps_serving_through_a_redis_outage(tmp_path, redis_server):
    env = serve_env(tmp_path, REDIS_URL=redis_server.url)
    servers.manage(env, "migrate", "--noinput")
    create_user(env, "prod.faults")
    server = servers.PortailServer(env, tmp_path / "serve.log").start()
    try:
        node, jar, credentials = logged_in(server)
        with override_settings(SECRET_KEY=env["PORTAIL_SECRET_KEY"]):
            # Redis holds the session under a keyed hash of the cookie (security.sessions).
            stored = stored_session_key(jar["portail_session"])
        assert any(k.endswith(stored) for k in redis_server.stored_keys())

        seen = []
        for outage in ("frozen", "killed"):
            if outage == "frozen":
                redis_server.freeze()
            else:
                redis_server.thaw()
                redis_server.kill()
            for name, path, data, status in [
                ("page", "/", None, 200),
                ("logout", "/auth/logout", {}, 302),
                ("login page", "/auth/login", None, 200),
                ("login", "/auth/login", credentials, 302),
                ("page", "/", None, 200),
            ]:
                response, seconds = answered(node.request, path, data)
                seen.append((outage, name, response.status, round(seconds * 1000)))
                assert response.status == status, (outage, name, response.text[:300])
            assert "Prod Faults" in response.text
        print("portail serve, Redis out (ms):", seen, "(shared load)")

        redis_server.start()
        time.sleep(1.1)  # the breaker's pause

        def session_in_redis():
            node.request("/auth/logout", {})
            node.request("/auth/login")
            node.request("/auth/login", credentials)
            with override_settings(SECRET_KEY=env["PORTAIL_SECRET_KEY"]):
                stored = stored_session_key(jar.get("portail_session", "-"))
            return any(k.endswith(stored) for k in redis_server.stored_keys())

        wait_until(session_in_redis)
    finally:
        server.stop()
    log = (tmp_path / "serve.log").read_text()
    assert "Internal Server Error" not in log
