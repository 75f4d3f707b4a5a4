"""A flood of bogus client credentials at /o/token/ against a user's login, through `portail serve`.

    python bench/token_flood.py [--seconds 10] [--rate 73] [--flooders 8]

Issue 9: with client secrets hashed by Argon2id and /o/token/ in the Argon2 lane, 73 bogus
requests/s pushed a user's login from 31 ms to 469 ms. Here, on PostgreSQL + Redis, 2 workers:

1. quiet: one user logs in again and again (its login latency is the reference);
2. flood, as before: the client's secret stored with Argon2id, /o/token/ in the expensive lane
   (PORTAIL_EXPENSIVE_PATHS), --flooders connections posting --rate wrong secrets/s for it;
3. flood, now: the secret stored as the keyed SHA-256 digest, /o/token/ outside the lane.

Each bogus request carries its own X-Forwarded-For (the portal behind its proxy): the worst case,
a flood from many addresses, so the per-address failure limit never trips; the per-client limit
is per client *at an address* (so nobody can lock an application out) and never trips either.
Prints login p50/p95 in each phase with the quiet reference of the same run, and the flood's rate.
Loopback only; the machine may be shared: compare the ratios.
"""

import argparse
import asyncio
import base64
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402

# A database and a Redis number of its own: bench/login.py and others use the shared ones.
s.DBNAME = "portail_bench_token_flood"
s.REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")

CLIENT_ID = "bench-flood-client"
SECRET = "bench-" + "s" * 40


def register_client(argon2: bool) -> None:
    hasher = "argon2" if argon2 else "portail_client_hmac_sha256"
    code = (
        "from django.contrib.auth.hashers import make_password\n"
        "from oauth2_provider.models import Application as C\n"
        f"C.objects.filter(client_id={CLIENT_ID!r}).delete()\n"
        f"C.objects.create(client_id={CLIENT_ID!r}, name='Flood', client_type='confidential',"
        " authorization_grant_type='authorization-code', redirect_uris='https://a.test/cb',"
        f" algorithm='RS256', client_secret=make_password({SECRET!r}, hasher={hasher!r}))\n"
    )
    s.subprocess.run(
        [sys.executable, "-m", "portail", "shell", "-c", code],
        cwd=s.ROOT,
        env=s.server_env(0),
        check=True,
        capture_output=True,
    )


async def logins(port, seconds):
    cookie, token = await s.login_credentials(port)
    headers = s.login_headers(cookie)
    latencies, failures = [], 0
    end = time.monotonic() + seconds
    number = 0
    while time.monotonic() < end:
        started = time.monotonic()
        status, answer, _ = await s.fetch(
            port, "POST", "/auth/login", s.login_body(token, number % 20), headers
        )
        latencies.append(time.monotonic() - started)
        number += 1
        if not (status == 302 and answer.get("location") == ["/"]):
            failures += 1
        await asyncio.sleep(0.05)
    return latencies, failures


async def flood(port, seconds, connections, rate):
    """`rate` bogus requests/s in all, paced (open loop), over `connections` connections."""
    counts = {}
    interval = connections / rate
    end = time.monotonic() + seconds
    body = urlencode({"grant_type": "refresh_token", "refresh_token": "x"}).encode()
    wrong = base64.b64encode(f"{CLIENT_ID}:faux".encode()).decode()

    async def one(number):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent = number
        try:
            next_at = time.monotonic() + interval * number / connections
            while time.monotonic() < end:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                sent += connections
                headers = {
                    "Authorization": "Basic " + wrong,
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Forwarded-For": f"198.51.{sent // 250 % 250}.{sent % 250 + 1}",
                }
                writer.write(s.build(port, "POST", "/o/token/", body, headers))
                await writer.drain()
                status, answer, _ = await s.read_answer(reader)
                counts[status] = counts.get(status, 0) + 1
                if answer.get("connection") == ["close"]:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(one(n) for n in range(connections)))
    return counts


async def phase(port, seconds, flooders, rate=0):
    if not flooders:
        return await logins(port, seconds), {}
    (result, counts) = await asyncio.gather(
        logins(port, seconds), flood(port, seconds, flooders, rate)
    )
    return result, counts


def report(name, result, counts, seconds, reference=None):
    latencies, failures = result
    p50, p95 = s.percentile(latencies, 50) * 1000, s.percentile(latencies, 95) * 1000
    line = f"{name}: login p50 {p50:.0f} ms, p95 {p95:.0f} ms ({len(latencies)} logins"
    line += f", {failures} not 302)" if failures else ")"
    if counts:
        total = sum(counts.values())
        line += f"; flood {total / seconds:.0f} requests/s {dict(sorted(counts.items()))}"
    if reference:
        line += f"; p50 ÷ quiet p50 = {p50 / reference:.2f}"
    print(line, flush=True)
    return p50


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--flooders", type=int, default=8)
    # The figure: 73 bogus requests/s took a login from 31 ms to 469 ms.
    parser.add_argument("--rate", type=float, default=73)
    args = parser.parse_args()
    print(f"Préparation : base {s.DBNAME}…", flush=True)
    s.prepare_database(20)
    print(f"load average before: {s.load_average()}", flush=True)
    proxy = {"PORTAIL_BEHIND_PROXY": "1"}
    lane = ",".join(
        ["/auth/login", "/auth/activation", "/auth/reset/", "/auth/lost-", "/o/token/"]
        + ["/compte/mot-de-passe"]
    )

    register_client(argon2=True)
    with s.Server(workers=2, PORTAIL_EXPENSIVE_PATHS=lane, **proxy) as server:
        asyncio.run(phase(server.port, 2, 0))  # warm-up
        quiet = report("quiet", *asyncio.run(phase(server.port, args.seconds, 0)), args.seconds)
        before = asyncio.run(phase(server.port, args.seconds, args.flooders, args.rate))
        report("flood, Argon2id secret, /o/token/ in the lane", *before, args.seconds, quiet)

    register_client(argon2=False)
    with s.Server(workers=2, **proxy) as server:
        asyncio.run(phase(server.port, 2, 0))
        quiet = report("quiet", *asyncio.run(phase(server.port, args.seconds, 0)), args.seconds)
        now = asyncio.run(phase(server.port, args.seconds, args.flooders, args.rate))
        report("flood, keyed SHA-256 digest, /o/token/ outside the lane", *now, args.seconds, quiet)
    print(f"load average after: {s.load_average()} ({os.cpu_count()} cores)", flush=True)


if __name__ == "__main__":
    main()
