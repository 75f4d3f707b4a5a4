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

The surge's logins are sent by h2load (nghttp2's load generator, in C: Debian's nghttp2-client)
when it is installed, as bench/login.py uses wrk: the generator shares the server's two cores, and
at 10× the asyncio client took 14–17 % of a core (~0.24 ms of CPU per login sent, against ~0.06 ms
for h2load), which the server's real clients, elsewhere, never take from it. `--client python`
keeps the asyncio client (all its answers timed); the probes are the asyncio client's either way.
"""

import argparse
import asyncio
import os
import re
import resource
import shutil
import sys
import tempfile
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


class _OneRequest(asyncio.Protocol):
    """One request on its own connection (Connection: close), its answer's status once the server
    has closed. An asyncio protocol rather than streams: at 10× the capacity the load generator
    opens 500–700 connections a second on the server's own cores, and the streams' reader and
    writer cost more (17 % of a core in session 9, 12–14 % now: bench/README.md « Session 10 »)."""

    def __init__(self, request: bytes, done: asyncio.Future):
        self.request, self.done, self.head = request, done, b""

    def connection_made(self, transport):
        transport.write(self.request)

    def data_received(self, data):
        if len(self.head) < 16:
            self.head += data[:16]

    def connection_lost(self, exc):
        if not self.done.done():
            try:
                self.done.set_result(int(self.head.split(b" ", 2)[1]))
            except (IndexError, ValueError):
                self.done.set_exception(OSError("no answer"))


async def post_once(port, request: bytes, timeout: float) -> int:
    """The status of one request sent on its own connection; TimeoutError or OSError."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(
                lambda: _OneRequest(request, done), "127.0.0.1", port
            )
            return await done
    finally:
        if transport is not None:
            transport.close()


async def surge(port, rate, seconds, give_up, credentials, accounts):
    results = {"served": 0, "503": 0, "timeout": 0, "failed": 0, "other": 0}
    within_2s = 0
    tasks = []

    async def one(number):
        nonlocal within_2s
        cookie, token = credentials[number % len(credentials)]
        request = s.build(
            port,
            "POST",
            "/auth/login",
            s.login_body(token, number % accounts),
            s.login_headers(cookie),
            close=True,
        )
        started = time.monotonic()
        try:
            status = await post_once(port, request, give_up)
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


H2LOAD_PROCESSES = 4  # each posts its own account's login: 4 accounts in turn


async def surge_h2load(port, rate, seconds, give_up, credentials):
    """The same surge sent by h2load (nghttp2's load generator, C; Debian's nghttp2-client): new
    connections at `rate` per second (a tenth every 100 ms, over H2LOAD_PROCESSES processes, each
    posting one account's login with its CSRF cookie and token), one request each, Connection:
    close, given up after `give_up` s. Returns what surge() returns, with the longest answer time
    in place of the count within 2 s (h2load gives no distribution), and h2load's CPU seconds."""
    per_period = max(1, round(rate / 10 / H2LOAD_PROCESSES))
    count = int(per_period * 10 * seconds)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    files, runs = [], []
    try:
        for number in range(H2LOAD_PROCESSES):
            cookie, token = credentials[number % len(credentials)]
            with tempfile.NamedTemporaryFile("wb", suffix=".body", delete=False) as file:
                file.write(s.login_body(token, number))
            files.append(file.name)
            runs.append(
                await asyncio.create_subprocess_exec(
                    *("h2load", "--h1", "-n", str(count), "-c", str(count)),
                    *("-r", str(per_period), "--rate-period", "100ms", "-T", str(int(give_up))),
                    *("-d", file.name, "-H", f"Cookie: {cookie['Cookie']}"),
                    *("-H", "Content-Type: application/x-www-form-urlencoded"),
                    *("-H", "Connection: close", f"http://127.0.0.1:{port}/auth/login"),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        surge_end = time.monotonic() + seconds
        outputs = [(await run.communicate())[0].decode() for run in runs]
    finally:
        for name in files:
            os.unlink(name)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    results = {"served": 0, "503": 0, "timeout": 0, "failed": 0, "other": 0}
    longest = 0.0
    for out in outputs:
        codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        done = re.search(r"requests: .*?(\d+) errored, (\d+) timeout", out)
        if not codes or not done:
            raise RuntimeError(f"h2load gave no result:\n{out}")
        # h2load counts status classes only: a login's 3xx is its 302, and a 500 would count
        # among the 5xx (`--client python` tells 503 from the rest; tests/test_serving.py asserts
        # that refusals are 503 with Retry-After).
        results["served"] += int(codes.group(2))
        results["503"] += int(codes.group(4))
        results["other"] += int(codes.group(1)) + int(codes.group(3))
        results["failed"] += int(done.group(1))
        results["timeout"] += int(done.group(2))
        row = re.search(r"time for request:\s+(\S+)\s+(\S+)", out)
        longest = max(longest, _seconds(row.group(2)))
    return results, longest, count * H2LOAD_PROCESSES, surge_end, cpu


def _seconds(value: str) -> float:
    """h2load's durations: 480us, 7.00ms, 1.25s."""
    for unit, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * scale
    return float(value)


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
        if args.h2load:
            results, longest, sent, surge_end, h2load_cpu = await surge_h2load(
                port, rate, args.seconds, args.give_up, credentials
            )
        else:
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
            f"\n{multiplier}× capacity: {sent / args.seconds:.0f} logins/s offered for "
            f"{args.seconds:.0f} s ({sent} sent, {'h2load' if args.h2load else 'Python client'})"
        )
        if args.h2load:
            client_cpu += h2load_cpu  # the probes' and recovery's Python, and h2load
            print(f"  answers: {share}; the longest took {longest:.2f} s (goal: within 2 s)")
        else:
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
    parser.add_argument(
        "--client",
        choices=["auto", "h2load", "python"],
        default="auto",
        help="surge generator: h2load when installed (auto), or the asyncio client",
    )
    args = parser.parse_args()
    args.multipliers = [float(m) for m in args.multipliers.split(",")]
    args.h2load = args.client == "h2load" or (args.client == "auto" and shutil.which("h2load"))
    print(
        "surge generator: " + ("h2load (nghttp2, C)" if args.h2load else "Python asyncio client"),
        flush=True,
    )
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
