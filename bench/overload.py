"""A login surge on `portail serve`: 3× and 10× its measured login capacity, for 20 s each.

    python bench/overload.py [--seconds 20] [--multipliers 3,10] [--workers 2] [--capacity N]

The server runs on PostgreSQL + Redis (bench/_serving.py). First its capacity is measured (closed
loop, a few keep-alive clients posting real logins), and the quiet latency of GET /auth/login and
of a static file. Then, for each multiplier, logins arrive at m × capacity per second (open loop:
each on its own connection, as many browsers would; a client gives up after --give-up seconds)
while a probe fetches the login page and a static file every 100 ms. Printed per surge: share of
logins served / refused with 503 / timed out / failed, share answered within 2 s, served logins/s
against capacity, p50/p99 of the probes during the surge against quiet, and the time from the end
of the surge until a login is served again as fast as when quiet.
"""

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402

try:
    import uvloop
except ImportError:  # the stdlib loop works too, with a costlier load generator
    uvloop = None


async def capacity(port, seconds, connections, accounts):
    from login import post_logins

    counts, latencies = await post_logins(port, seconds, connections, accounts)
    return counts["ok"] / seconds, s.percentile(latencies, 50)


async def probe(port, path, interval, stop, out):
    while not stop.is_set():
        started = time.monotonic()
        try:
            status, _, _ = await s.fetch(port, "GET", path, timeout=10)
            out.append((time.monotonic() - started, status))
        except (TimeoutError, OSError):
            out.append((float("inf"), 0))
        await asyncio.sleep(max(0, interval - (time.monotonic() - started)))


async def surge(port, rate, seconds, give_up, credentials, accounts):
    results = {"served": 0, "503": 0, "timeout": 0, "failed": 0, "other": 0}
    within_2s = 0
    tasks = []

    async def one(number):
        nonlocal within_2s
        cookie, token = credentials[number % len(credentials)]
        started = time.monotonic()
        try:
            status, headers, _ = await s.fetch(
                port,
                "POST",
                "/auth/login",
                s.login_body(token, number % accounts),
                s.login_headers(cookie),
                timeout=give_up,
            )
        except TimeoutError:
            results["timeout"] += 1
            return
        except OSError:
            results["failed"] += 1
            return
        if time.monotonic() - started <= 2:
            within_2s += 1
        if status == 302:
            results["served"] += 1
        elif status == 503:
            results["503"] += 1
        else:
            results["other"] += 1

    start = time.monotonic()
    number = 0
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        due = int((now - start) * rate)
        while number < due:
            tasks.append(asyncio.ensure_future(one(number)))
            number += 1
        await asyncio.sleep(0.005)
    surge_end = time.monotonic()
    await asyncio.gather(*tasks)
    return results, within_2s, number, surge_end


async def recovery(port, quiet_login, surge_end, credentials):
    """Seconds from the surge's end until a login is served within 2× its quiet latency."""
    cookie, token = credentials[0]
    while time.monotonic() - surge_end < 60:
        started = time.monotonic()
        try:
            status, _, _ = await s.fetch(
                port, "POST", "/auth/login", s.login_body(token, 0), s.login_headers(cookie)
            )
        except (TimeoutError, OSError):
            status = 0
        if status == 302 and time.monotonic() - started <= 2 * quiet_login:
            return max(0.0, time.monotonic() - surge_end)
        await asyncio.sleep(0.05)
    return float("inf")


def summary(samples):
    times = [t for t, status in samples if status == 200]
    bad = len(samples) - len(times)
    return (
        f"p50 {s.percentile(times, 50) * 1000:.0f} ms, p99 {s.percentile(times, 99) * 1000:.0f} ms"
        f" ({len(samples)} probes{f', {bad} failed' if bad else ''})"
    )


async def run(args):
    port = args.port
    cookie, _ = await s.login_credentials(port)
    _, _, page = await s.fetch(port, "GET", "/auth/login")
    static = re.search(rb'href="(/static/[^"]+\.css)"', page).group(1).decode()
    credentials = [await s.login_credentials(port) for _ in range(20)]

    connections = 2 * args.workers + 2
    await capacity(port, 2, connections, args.accounts)  # warm-up
    if args.capacity:
        cap, quiet_login = args.capacity, 0.05
        _, quiet_login = await capacity(port, 3, 1, args.accounts)
    else:
        client_cpu = time.process_time()
        cap, _ = await capacity(port, 8, connections, args.accounts)
        client_cpu = time.process_time() - client_cpu
        _, quiet_login = await capacity(port, 3, 1, args.accounts)
        # The load generator shares the cores with the server: what it takes at capacity, to
        # compare with what it takes during a surge (many more requests, a connection each).
        print(f"load generator CPU at capacity: {100 * client_cpu / 8:.0f} % of a core")
    print(f"capacity: {cap:.1f} logins/s; a lone login: {quiet_login * 1000:.0f} ms", flush=True)

    stop = asyncio.Event()
    quiet_page, quiet_static = [], []
    probes = [
        asyncio.ensure_future(probe(port, "/auth/login", 0.1, stop, quiet_page)),
        asyncio.ensure_future(probe(port, static, 0.1, stop, quiet_static)),
    ]
    await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*probes)
    print(f"quiet  GET /auth/login: {summary(quiet_page)}")
    print(f"quiet  GET {static}: {summary(quiet_static)}", flush=True)

    for multiplier in args.multipliers:
        rate = multiplier * cap
        stop = asyncio.Event()
        page_samples, static_samples = [], []
        probes = [
            asyncio.ensure_future(probe(port, "/auth/login", 0.1, stop, page_samples)),
            asyncio.ensure_future(probe(port, static, 0.1, stop, static_samples)),
        ]
        client_cpu = time.process_time()
        server_cpu = args.server.cpu_seconds()
        results, within_2s, sent, surge_end = await surge(
            port, rate, args.seconds, args.give_up, credentials, args.accounts
        )
        server_cpu = args.server.cpu_seconds() - server_cpu
        stop.set()
        await asyncio.gather(*probes)
        back = await recovery(port, quiet_login, surge_end, credentials)
        client_cpu = time.process_time() - client_cpu
        share = {k: f"{100 * v / max(sent, 1):.0f}%" for k, v in results.items()}
        print(
            f"\n{multiplier}× capacity: {rate:.0f} logins/s offered for {args.seconds:.0f} s ({sent} sent)"
        )
        print(f"  answers: {share}; within 2 s: {100 * within_2s / max(sent, 1):.0f}%")
        print(
            f"  served {results['served'] / args.seconds:.1f} logins/s = "
            f"{results['served'] / args.seconds / cap:.2f} × capacity"
        )
        print(f"  GET /auth/login during the surge: {summary(page_samples)}")
        print(f"  GET static file during the surge: {summary(static_samples)}")
        print(f"  back to a quiet login {back:.1f} s after the surge ended")
        # The machine may be shared: the capacity again, right after, tells the surge's own cost
        # from the neighbours' load.
        after, _ = await capacity(port, 5, 2 * args.workers + 2, args.accounts)
        print(
            f"  capacity measured again after the surge: {after:.1f} logins/s "
            f"(served during the surge = {results['served'] / args.seconds / after:.2f} × that)"
        )
        print(
            f"  server CPU during the surge: {server_cpu:.1f} s, "
            f"{server_cpu * 1000 / max(results['served'], 1):.1f} ms per served login "
            f"(refused ones included)"
        )
        print(
            f"  load generator CPU: {client_cpu:.1f} s ({100 * client_cpu / args.seconds:.0f} % of"
            f" a core over the surge); load average {s.load_average()}",
            flush=True,
        )
        await asyncio.sleep(3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--multipliers", default="3,10")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--capacity", type=float, default=0, help="skip measuring it")
    parser.add_argument("--give-up", type=float, default=10, help="client timeout, seconds")
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--skip-setup", action="store_true", help="reuse the bench database")
    args = parser.parse_args()
    args.multipliers = [float(m) for m in args.multipliers.split(",")]
    if not args.skip_setup:
        print(f"Préparation : base {s.DBNAME}, {args.accounts} comptes…", flush=True)
        s.prepare_database(args.accounts)
    print(f"load average before: {s.load_average()}", flush=True)
    with s.Server(workers=args.workers) as server:
        args.port, args.server = server.port, server
        if uvloop is not None:
            uvloop.run(run(args))
        else:
            asyncio.run(run(args))


if __name__ == "__main__":
    main()
