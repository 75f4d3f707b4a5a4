"""Faults through a real `portail serve`: what a user waits for when Redis or PostgreSQL goes away.

    python bench/faults.py [-n 40]     (needs redis-server on the PATH and PostgreSQL on 5432)

1. Redis (SQLite database, REDIS_URL to a redis-server of the bench's own, 1 worker): a logged-in
   page (GET /) and a login (POST, one Argon2id check), -n times each, with Redis up (the
   reference), killed (SIGKILL), and frozen (SIGSTOP). Median and p95, and the ratio to Redis up.
2. PostgreSQL black hole (a forwarder that holds its sockets and forwards nothing): time of the
   first request to get its 503, of the following ones (connect breaker), and after the forwarder
   resumes, time until the first 200.

Prints figures; asserts nothing. The machine is shared: read the ratios, measured in one run.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("PORTAIL_LOG_LEVEL", "ERROR")

import django  # noqa: E402

django.setup()

from tests.helpers import STRONG_PASSWORD  # noqa: E402
from tests.servers import POSTGRES_URL, PortailServer, manage, postgres_database  # noqa: E402
from tests.test_faults_postgres import BlackHoleProxy  # noqa: E402
from tests.test_faults_redis import RedisServer, create_user, serve_env  # noqa: E402
from tests.test_production_path import Node  # noqa: E402


def timed(node, path, data=None):
    started = time.perf_counter()
    response = node.request(path, data)
    return response.status, (time.perf_counter() - started) * 1000


def summary(samples):
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return statistics.median(samples), p95


def redis_part(n, tmp):
    redis = RedisServer(tmp).start()
    env = serve_env(tmp, REDIS_URL=redis.url, PORTAIL_LOG_LEVEL="ERROR")
    manage(env, "migrate", "--noinput")
    create_user(env, "bench.faults")
    server = PortailServer(env, tmp / "serve-redis.log").start()
    credentials = {"identifier": "bench.faults", "password": STRONG_PASSWORD}
    results = {}
    try:
        node = Node(server.port, {})
        node.request("/auth/login")
        node.request("/auth/login", credentials)
        for state in ("up", "killed", "frozen"):
            if state == "killed":
                redis.kill()
            elif state == "frozen":
                redis.start()
                time.sleep(1.2)  # breaker's pause (PORTAIL_CACHE_BREAKER_SECONDS=1 here)
                timed(node, "/")  # the probe finds Redis back
                redis.freeze()
            pages, logins, statuses = [], [], set()
            for _ in range(n):
                status, ms = timed(node, "/")
                statuses.add(status)
                pages.append(ms)
            for _ in range(n):
                node.request("/auth/logout", {})
                node.request("/auth/login")
                status, ms = timed(node, "/auth/login", credentials)
                statuses.add(status)
                logins.append(ms)
            results[state] = (summary(pages), summary(logins), sorted(statuses))
    finally:
        server.stop()
        redis.stop()
    (ref_page, _), (ref_login, _), _ = results["up"]
    print(f"Redis, {n} logged-in pages and {n} logins per state, 1 worker, SQLite")
    print("  state    page median / p95      login median / p95     statuses  ratio to up")
    for state, ((pm, pp), (lm, lp), statuses) in results.items():
        print(
            f"  {state:7}  {pm:6.1f} / {pp:6.1f} ms     {lm:6.1f} / {lp:6.1f} ms    {statuses}"
            f"  page ×{pm / ref_page:.2f}, login ×{lm / ref_login:.2f}"
        )


def postgres_part(tmp):
    with postgres_database("portail_bench_faults") as name:
        direct = serve_env(tmp, DATABASE_URL=f"{POSTGRES_URL}/{name}", PORTAIL_LOG_LEVEL="ERROR")
        manage(direct, "migrate", "--noinput")
        create_user(direct, "bench.faults")
        proxy = BlackHoleProxy()
        env = {**direct, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{proxy.port}/{name}"}
        try:
            with PortailServer(env, tmp / "serve-pg.log") as server:
                node = Node(server.port, {})
                node.request("/auth/login")
                node.request(
                    "/auth/login", {"identifier": "bench.faults", "password": STRONG_PASSWORD}
                )
                up = [timed(node, "/")[1] for _ in range(10)]
                proxy.pause()
                during = [timed(node, "/") for _ in range(10)]
                proxy.resume()
                resumed = time.perf_counter()
                while timed(node, "/")[0] != 200:
                    time.sleep(0.1)
                healed = time.perf_counter() - resumed
        finally:
            proxy.close()
    print("PostgreSQL black hole, logged-in page, 1 worker")
    print(f"  reference (database up): median {statistics.median(up):.1f} ms")
    print(f"  first request: {during[0][0]} in {during[0][1]:.0f} ms")
    rest = [ms for _, ms in during[1:]]
    print(
        f"  next {len(rest)}: statuses {sorted({s for s, _ in during[1:]})}, "
        f"median {statistics.median(rest):.0f} ms, max {max(rest):.0f} ms"
    )
    print(f"  first 200 after the database is back: {healed:.1f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} (2 shared cores: read the ratios)")
    with tempfile.TemporaryDirectory() as tmp:
        redis_part(args.n, Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        postgres_part(Path(tmp))


if __name__ == "__main__":
    main()
