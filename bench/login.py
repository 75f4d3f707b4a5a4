"""Login throughput of `portail serve` against the Argon2id limit of the same cores, in one run.

    python bench/login.py [--seconds 15] [--variants "2;2 PORTAIL_EXPENSIVE_CONCURRENCY=1;3"] [--connections N]

1. The reference: N processes (N = cores) verify Argon2id hashes with the portal's parameters
   (PORTAIL_ARGON2_*) for --seconds: verifications/s, the most logins these cores can ever do.
2. The portal: `portail serve` (gunicorn + uvicorn workers, admission control) on PostgreSQL
   (its own database, portail_bench_serving) + Redis (db 9), once per variant: a process count and
   environment variables for the server (default: cores as configured; then cores with one
   expensive request at a time per process, as before session 9); --connections keep-alive clients (default 2 per worker + 2) each
   take a CSRF cookie and token once, then post real logins (CSRF checked, session opened in Redis
   and PostgreSQL, audit written) for --accounts different accounts in turn, for --seconds.
   A login counts when it answers 302 to /. The CPU seconds of each worker are printed: how
   the connections fell on the processes (one may get them all).
3. The load generator: `wrk` (Debian's package, `apt-get install wrk`) when it is installed, as
   issue 8 measured, driven by a Lua script that posts the same logins (CSRF cookie and token
   taken once by this script); else (or with --client python) the asyncio client above, which
   shares the cores with the server in this Python process. The one that ran and its CPU are
   printed.

Prints both, the ratio (goal ≥ 0.90), and the CPU seconds per login of the server, PostgreSQL and
the load generator. Loopback only; the machine may be shared: compare the ratio, not the absolute
figures.
"""

import argparse
import asyncio
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
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


# wrk's Lua script: each request posts the next account's login with the CSRF cookie and token
# taken once; a login counts when it answers 302 to /. Counters are per wrk thread (Lua states).
WRK_SCRIPT = """
local threads = {}
local prefix = "csrfmiddlewaretoken=%(token)s&identifier=bench.eleve"
local suffix = "&password=%(password)s"
local accounts = %(accounts)d
wrk.method = "POST"
wrk.headers["Cookie"] = "%(cookie)s"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  ok, other, counter = 0, 0, 0
end

function request()
  counter = counter + 1
  local body = prefix .. ((counter * %(threads)d + id) %% accounts) .. suffix
  return wrk.format(nil, "/auth/login", nil, body)
end

function response(status, headers, body)
  local location = headers["location"] or headers["Location"]
  if status == 302 and location == "/" then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local o, x = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); x = x + t:get("other") end
  io.write(string.format("RESULT %%d %%d %%d %%d\\n", o, x,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_logins(port, seconds, connections, accounts, threads=1):
    """wrk posting logins for `seconds`: (ok, other, p50 s, p99 s, elapsed s, wrk's CPU s)."""
    from urllib.parse import quote_plus

    cookie, token = asyncio.run(s.login_credentials(port))
    script = WRK_SCRIPT % {
        "token": token,
        "password": quote_plus(s.PASSWORD),
        "accounts": accounts,
        "cookie": cookie["Cookie"],
        "threads": threads,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
            + ["-s", file.name, f"http://127.0.0.1:{port}/auth/login"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        ).stdout
        elapsed = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.unlink(file.name)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+)", out)
    if not found:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    ok, other, p50, p99 = (int(x) for x in found.groups())
    return ok, other, p50 / 1e6, p99 / 1e6, elapsed, cpu


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
    parser.add_argument(
        "--client",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk when installed (auto), or the asyncio client",
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    print(
        "load generator: "
        + ("wrk (Lua script posting real logins)" if use_wrk else "Python asyncio client"),
        flush=True,
    )

    if not args.skip_setup:
        print(f"Préparation : base {s.DBNAME}, {args.accounts} comptes…", flush=True)
        s.prepare_database(args.accounts)

    print(f"load average before: {s.load_average()}", flush=True)
    # Default: as configured; then one expensive request at a time per process (as before
    # session 9), for comparison.
    variants = args.variants or f"{cores};{cores} PORTAIL_EXPENSIVE_CONCURRENCY=1"
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
            snapshot = s.CpuSnapshot(server)
            if use_wrk:
                ok, other, p50, p99, elapsed, client_cpu = wrk_logins(
                    server.port, int(args.seconds), connections, args.accounts
                )
                counts = {"ok": ok, "other": {"not 302 to /": other} if other else {}}
            else:
                client_before = time.process_time()
                started = time.monotonic()
                counts, latencies = asyncio.run(
                    post_logins(server.port, args.seconds, connections, args.accounts)
                )
                elapsed = time.monotonic() - started
                client_cpu = time.process_time() - client_before
                p50, p99 = s.percentile(latencies, 50), s.percentile(latencies, 99)
            server_cpu, pg_cpu, shares = snapshot.spent()

        rate = counts["ok"] / elapsed
        print(
            f"portail serve, {workers} workers {' '.join(extra)}, {connections} connections "
            f"({'wrk' if use_wrk else 'Python client'}), "
            f"{elapsed:.1f} s: {counts['ok']} logins, {rate:.1f} logins/s "
            f"(other answers: {counts['other'] or 'none'})"
        )
        print(f"  latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
        # How the connections fell on the processes (one may get them all).
        print("  CPU seconds of each worker: " + " / ".join(f"{cpu:.1f}" for cpu in shares))
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
