"""Login throughput of `portail serve` against the Argon2id limit of the same cores, in one run.

    python bench/login.py [--seconds 15] [--variants "2 PORTAIL_DB_POOL_SIZE=0;2;3"] [--connections N]

1. The reference: N processes (N = cores) verify Argon2id hashes with the portal's parameters
   (PORTAIL_ARGON2_*) for --seconds: verifications/s, the most logins these cores can ever do.
2. The portal: `portail serve` (gunicorn + uvicorn workers, admission control) on PostgreSQL
   (its own database, portail_bench_serving) + Redis (db 9), once per variant: a process count and
   environment variables for the server (default: cores without the PostgreSQL pool, as before;
   cores; cores with two expensive requests at once per process); --connections keep-alive clients (default 2 per worker + 2) each
   take a CSRF cookie and token once, then post real logins (CSRF checked, session opened in Redis
   and PostgreSQL, audit written) for --accounts different accounts in turn, for --seconds.
   A login counts when it answers 302 to /.

Prints both, the ratio (goal ≥ 0.90), and the CPU seconds per login of the server and PostgreSQL.
Loopback only; the machine may be shared: compare the ratio, not the absolute figures.
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402


async def post_logins(port, seconds, connections, accounts):
    counts = {"ok": 0, "other": {}}
    latencies = []
    end = time.monotonic() + seconds

    async def client(number):
        cookie, token = await s.login_credentials(port)
        headers = s.login_headers(cookie)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        account = number
        try:
            while time.monotonic() < end:
                body = s.login_body(token, account % accounts)
                account += connections
                started = time.monotonic()
                writer.write(s.build(port, "POST", "/auth/login", body, headers))
                await writer.drain()
                status, answer, _ = await s.read_answer(reader)
                latencies.append(time.monotonic() - started)
                if status == 302 and answer.get("location") == ["/"]:
                    counts["ok"] += 1
                else:
                    counts["other"][status] = counts["other"].get(status, 0) + 1
                if answer.get("connection") == ["close"]:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(client(n) for n in range(connections)))
    return counts, latencies


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument(
        "--variants",
        default=None,
        help="';'-separated: a process count, then KEY=VALUE for the server",
    )
    parser.add_argument("--connections", type=int, default=0)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--skip-setup", action="store_true", help="reuse the bench database")
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    if not args.skip_setup:
        print(f"Préparation : base {s.DBNAME}, {args.accounts} comptes…", flush=True)
        s.prepare_database(args.accounts)

    print(f"load average before: {s.load_average()}", flush=True)
    variants = args.variants or (
        f"{cores} PORTAIL_DB_POOL_SIZE=0;{cores};{cores} PORTAIL_EXPENSIVE_CONCURRENCY=2"
    )
    for variant in variants.split(";"):
        workers, *extra = variant.split()
        workers = int(workers)
        env = dict(item.split("=", 1) for item in extra)
        connections = args.connections or 2 * workers + 2
        # The reference, measured right before each server run (the machine's load drifts).
        reference, argon2_cpu = s.argon2_limit(cores, args.seconds)
        print(
            f"Argon2id limit, {cores} processes, {args.seconds:.0f} s: "
            f"{reference:.1f} verifications/s ({argon2_cpu * 1000:.1f} ms CPU each)",
            flush=True,
        )
        with s.Server(workers=workers, **env) as server:
            # Warm-up: connections to PostgreSQL and Redis, templates compiled.
            asyncio.run(post_logins(server.port, 2, connections, args.accounts))
            cpu_before, pg_before = server.cpu_seconds(), s.postgres_cpu()
            client_before = time.process_time()
            started = time.monotonic()
            counts, latencies = asyncio.run(
                post_logins(server.port, args.seconds, connections, args.accounts)
            )
            elapsed = time.monotonic() - started
            server_cpu = server.cpu_seconds() - cpu_before
            pg_cpu = s.postgres_cpu_since(pg_before)
            client_cpu = time.process_time() - client_before

        rate = counts["ok"] / elapsed
        print(
            f"portail serve, {workers} workers {' '.join(extra)}, {connections} connections, "
            f"{elapsed:.1f} s: {counts['ok']} logins, {rate:.1f} logins/s "
            f"(other answers: {counts['other'] or 'none'})"
        )
        print(
            f"  latency p50 {s.percentile(latencies, 50) * 1000:.0f} ms, "
            f"p99 {s.percentile(latencies, 99) * 1000:.0f} ms"
        )
        if counts["ok"]:
            per = 1000 / counts["ok"]
            login_cpu = (server_cpu + pg_cpu + client_cpu) * per
            print(
                f"  CPU per login: server {server_cpu * per:.1f} ms + PostgreSQL {pg_cpu * per:.1f}"
                f" ms (its backends) + load generator {client_cpu * per:.1f} ms = {login_cpu:.1f}"
                f" ms, against {argon2_cpu * 1000:.1f} ms for one Argon2id verification: "
                f"CPU ratio {argon2_cpu * 1000 / login_cpu:.2f} (the ratio of an idle machine)"
            )
        print(f"  ratio logins/s ÷ Argon2id verifications/s: {rate / reference:.2f} (goal ≥ 0.90)")
        print(f"  load average: {s.load_average()}", flush=True)


if __name__ == "__main__":
    main()
