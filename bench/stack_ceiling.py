"""How close any login served by Portail's serving stack can come to the Argon2id limit, in one run.

    python bench/stack_ceiling.py [--seconds 15] [--variants "0;3;3 CEILING_SLOTS=2;portal"]

bench/login.py measures `portail serve` against the Argon2id limit of the same cores (issue 8's
goal: ≥ 0.90). This measures the ceiling beneath it: the same server (gunicorn, 2 uvicorn workers
on uvloop + llhttp, the WsgiBridge's two threads per process, wrk on the same cores) in front of
bench/_ceiling_app.py, a login with nothing of Portail above the server — the form read, N
PostgreSQL round trips, one Argon2id verification, 302 — then the portal itself, each right after
its own Argon2id reference. What separates the portal from the ceiling is Django and Portail's
login; what separates the ceiling from 1.00 is the server, the load generator and the Argon2id
verifications of four threads sharing two cores, which no code above the server can take back.

Needs wrk (`apt-get install wrk`). Prints per variant: logins/s, the ratio, the CPU per login of
the server, PostgreSQL and wrk. Loopback only.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402
import login  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class CeilingServer(s.Server):
    """The bench's server (environment, log, readiness, CPU) running gunicorn with Portail's
    worker class on bench/_ceiling_app.py instead of `portail serve`."""

    def __init__(self, workers: int, queries: int, **env):
        super().__init__(workers=workers, CEILING_QUERIES=str(queries), **env)
        self.ready = "/auth/login"

    def command(self) -> list[str]:
        # --preload: the app module (and CEILING_SLOTS's semaphore) is made before the fork.
        return (
            [sys.executable, "-m", "gunicorn", "--preload", "-w", str(self.workers)]
            + ["-k", "portail.ops.serving.PortailUvicornWorker", "--keep-alive", "5"]
            + ["--chdir", str(ROOT / "bench"), "--bind", f"127.0.0.1:{self.port}"]
            + ["_ceiling_app:application"]
        )


def measure(name, server, seconds, connections, accounts):
    snapshot = s.CpuSnapshot(server)
    ok, other, p50, p99, elapsed, client_cpu = login.wrk_logins(
        server.port, seconds, connections, accounts
    )
    server_cpu, pg_cpu, shares = snapshot.spent()
    per = 1000 / max(ok, 1)
    print(
        f"{name}: {ok / elapsed:.1f} logins/s (other answers: {other}), "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    print("  CPU seconds of each worker: " + " / ".join(f"{cpu:.1f}" for cpu in shares))
    print(
        f"  CPU per login: server {server_cpu * per:.1f} ms + PostgreSQL {pg_cpu * per:.1f} ms"
        f" + wrk {client_cpu * per:.1f} ms"
    )
    return ok / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument(
        "--variants",
        default="0;3;3 CEILING_THREADS=1;3 CEILING_SLOTS=2;portal",
        help="';'-separated: PostgreSQL round trips per login (or 'portal'), then KEY=VALUE for "
        "the server (CEILING_THREADS: the bridge's threads per process, 2 as the portal's lane; "
        "CEILING_SLOTS: Argon2id computations at once on the node, unlimited by default)",
    )
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--skip-setup", action="store_true", help="reuse the bench database")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("stack_ceiling.py needs wrk (Debian: apt-get install wrk): not run")
        return
    cores = os.cpu_count() or 1
    connections = 2 * cores + 2  # as bench/login.py
    if not args.skip_setup:
        print(f"Préparation : base {s.DBNAME}, {args.accounts} comptes…", flush=True)
        s.prepare_database(args.accounts)
    print(f"load average before: {s.load_average()}", flush=True)
    for variant in args.variants.split(";"):
        kind, *extra = variant.split()
        env = dict(item.split("=", 1) for item in extra)
        reference, argon2_cpu = s.argon2_limit(cores, args.seconds)
        print(
            f"Argon2id limit, {cores} processes: {reference:.1f} verifications/s "
            f"({argon2_cpu * 1000:.1f} ms CPU each)",
            flush=True,
        )
        if kind != "portal":
            with CeilingServer(cores, int(kind), **env) as server:
                login.wrk_logins(server.port, 2, connections, args.accounts)  # warm-up
                name = f"ceiling: {kind} PostgreSQL round trips + Argon2id {' '.join(extra)}"
                rate = measure(name, server, args.seconds, connections, args.accounts)
        else:
            with s.Server(workers=cores, **env) as server:
                login.wrk_logins(server.port, 2, connections, args.accounts)  # warm-up
                rate = measure(
                    f"portail serve {' '.join(extra)}",
                    server,
                    args.seconds,
                    connections,
                    args.accounts,
                )
        print(f"  ratio ÷ Argon2id limit: {rate / reference:.2f}", flush=True)
    print(f"load average after: {s.load_average()}")


if __name__ == "__main__":
    main()
