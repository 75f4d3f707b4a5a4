"""What the benchmarks share. A real `portail serve` (tests/servers.py's PortailServer, the tests'
own) on PostgreSQL + Redis with many accounts, a small asyncio HTTP client (loopback only), the
Argon2id reference of the same cores, and the CPU seconds a process spent (bench/login.py,
overload.py, slow_clients.py, strength_flood.py, recovery_timing.py); a bench database dropped and
created, and the environment of production settings for benches that run Django in their own
process (audit.py, import.py, mail.py, recovery_timing.py).

The serving database is the benchmarks' own (`portail_bench_serving`, dropped and recreated);
Redis is database 9. Nothing here asserts: figures are printed, with their reference measured in
the run.
"""

import asyncio
import multiprocessing
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import (  # noqa: E402,F401 (re-exported for the benches)
    PortailServer,
    create_user,
    free_port,
    manage,
    portail_command,
    portail_env,
)

VAR_DIR = ROOT / "var" / "bench-serving"
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
DBNAME = os.environ.get("BENCH_DB_NAME", "portail_bench_serving")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
PASSWORD = "cheval orange batterie agrafe"
IDENTIFIER = "bench.eleve{}"


def server_env(port: int, **extra) -> dict:
    """The serving benchmarks' `portail serve`: the bench database and Redis, mail never sent.

    The PORTAIL_* variables of this process go on to the server (PORTAIL_ARGON2_* is read by the
    Argon2id reference too: both sides must use the same parameters).
    """
    inherited = {k: v for k, v in os.environ.items() if k.startswith("PORTAIL_")}
    return portail_env(
        VAR_DIR,
        **{
            **inherited,
            "DATABASE_URL": f"{POSTGRES}/{DBNAME}",
            "REDIS_URL": REDIS_URL,
            "PORTAIL_SECRET_KEY": inherited.get("PORTAIL_SECRET_KEY", "bench-only-" + "k" * 40),
            "PORTAIL_BASE_URL": f"http://127.0.0.1:{port}",
            "PORTAIL_ALLOWED_HOSTS": "127.0.0.1",
            "PORTAIL_MAIL_DELIVER_ON_COMMIT": "0",
            **extra,
        },
    )


def recreate_database(url: str) -> None:
    """Drop (closing its sessions) and create the PostgreSQL database of `url`: a bench's own."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of `url` if it is not there yet."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def in_process_settings(database: str, **defaults) -> str:
    """For a bench that runs Django in its own process: what production settings need, each only
    where the environment does not say it already; `defaults` first. Returns DATABASE_URL (by
    default the bench's own database `database` on BENCH_POSTGRES_URL)."""
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("DATABASE_URL", f"{POSTGRES}/{database}")
    os.environ.setdefault("PORTAIL_SECRET_KEY", "bench-only-secret-key-not-for-production-use")
    # Production settings need these; no bench sends mail to it or follows a link.
    os.environ.setdefault("PORTAIL_BASE_URL", "https://ent.example.test")
    os.environ.setdefault("EMAIL_URL", "smtp://127.0.0.1:25")
    os.environ.setdefault("PORTAIL_LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portail.settings")
    return os.environ["DATABASE_URL"]


def prepare_database(accounts: int) -> None:
    """Drop, create and migrate the bench database; `accounts` active pupils share one password."""
    recreate_database(f"{POSTGRES}/{DBNAME}")
    env = server_env(0)
    manage(env, "migrate", "--noinput")
    code = (
        "from django.contrib.auth.hashers import make_password\n"
        "from portail.accounts.models import User, State, Profile\n"
        f"encoded = make_password({PASSWORD!r})\n"
        "User.objects.bulk_create([User(identifier=f'bench.eleve{i}', password=encoded, "
        "first_name='Eleve', last_name=f'Bench{i}', profile=Profile.ELEVE, state=State.ACTIVE) "
        f"for i in range({accounts})])\n"
    )
    manage(env, "shell", "-c", code)


class Server(PortailServer):
    """`portail serve` on the bench database; its output goes to var/bench-serving/serve.log."""

    def __init__(self, workers: int = 2, **env):
        port = free_port()
        super().__init__(
            server_env(port, **env),
            VAR_DIR / "serve.log",
            workers=workers,
            port=port,
            ready="/healthz",
        )

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the master and its workers so far."""
        return process_cpu(self.process.pid) + sum(self.worker_cpu().values())

    def worker_cpu(self) -> dict:
        """CPU time of each worker so far, by process id (how evenly they share the work)."""
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        return {int(pid): process_cpu(int(pid)) for pid in children}


class CpuSnapshot:
    """The CPU seconds spent so far by a Server (master and workers, each worker apart) and by
    the bench database's PostgreSQL backends; spent() gives what each spent since."""

    def __init__(self, server):
        self.server = server
        self.server_cpu = server.cpu_seconds()
        self.workers = server.worker_cpu()
        self.postgres = postgres_cpu()

    def spent(self) -> tuple[float, float, list[float]]:
        """(server CPU s, PostgreSQL CPU s, CPU s of each worker) since the snapshot."""
        shares = [cpu - self.workers.get(pid, 0.0) for pid, cpu in self.server.worker_cpu().items()]
        return (
            self.server.cpu_seconds() - self.server_cpu,
            postgres_cpu_since(self.postgres),
            shares,
        )


def process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict:
    """CPU seconds of each PostgreSQL backend serving the bench database, by process id."""
    found = subprocess.run(["pgrep", "-f", f"postgres: .*{DBNAME}"], capture_output=True, text=True)
    return {int(pid): process_cpu(int(pid)) for pid in found.stdout.split()}


def postgres_cpu_since(before: dict) -> float:
    """CPU seconds spent since `before` by the backends alive now (new ones count whole)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in postgres_cpu().items())


# --- A small HTTP/1.1 client on asyncio ---------------------------------------------------------


async def read_answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    if headers.get("transfer-encoding") == ["chunked"]:
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            body += (await reader.readexactly(size + 2))[:size]
            if size == 0:
                return status, headers, body
    length = int(headers.get("content-length", ["0"])[0])
    body = await reader.readexactly(length) if length else b""
    return status, headers, body


def build(port, method, path, body=b"", headers=None, close=False):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if close:
        lines.append("Connection: close")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def fetch(port, method, path, body=b"", headers=None, timeout=10.0):
    """One request on its own connection: (status, headers, body)."""

    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(build(port, method, path, body, headers, close=True))
            await writer.drain()
            return await read_answer(reader)
        finally:
            writer.close()

    return await asyncio.wait_for(go(), timeout)


async def login_credentials(port):
    """A CSRF cookie and its form token, as a browser holds them after GET /auth/login.

    Both stay valid together for many logins (a client that does not take the rotated cookie).
    """
    status, headers, body = await fetch(port, "GET", "/auth/login")
    assert status == 200, status
    cookie = next(c for c in headers["set-cookie"] if c.startswith("csrftoken="))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    return {"Cookie": cookie.split(";", 1)[0]}, token


def login_body(token: str, number: int, password: str = PASSWORD) -> bytes:
    return urlencode(
        {
            "csrfmiddlewaretoken": token,
            "identifier": IDENTIFIER.format(number),
            "password": password,
        }
    ).encode()


def login_headers(cookie: dict) -> dict:
    return {**cookie, "Content-Type": "application/x-www-form-urlencoded"}


# --- The Argon2id reference ---------------------------------------------------------------------


def argon2_hasher():
    """argon2-cffi's hasher with the portal's parameters: PORTAIL_ARGON2_* as the server reads them
    (portail/settings.py), with the same defaults (OWASP's m=19 MiB, t=2, p=1)."""
    from argon2 import PasswordHasher, Type

    return PasswordHasher(
        memory_cost=int(os.environ.get("PORTAIL_ARGON2_MEMORY_KIB", 19 * 1024)),
        time_cost=int(os.environ.get("PORTAIL_ARGON2_TIME_COST", 2)),
        parallelism=int(os.environ.get("PORTAIL_ARGON2_PARALLELISM", 1)),
        type=Type.ID,
    )


def _hash_for(seconds: float, out) -> None:
    hasher = argon2_hasher()
    encoded = hasher.hash(PASSWORD)
    count, end, cpu = 0, time.monotonic() + seconds, time.process_time()
    while time.monotonic() < end:
        hasher.verify(encoded, PASSWORD)
        count += 1
    out.put((count, time.process_time() - cpu))


def argon2_limit(processes: int, seconds: float) -> tuple[float, float]:
    """Argon2id verifications per second of `processes` processes with the portal's parameters,
    and the CPU seconds one verification costs (what an idle machine's limit follows from)."""
    out = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_hash_for, args=(seconds, out)) for _ in range(processes)
    ]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    count = sum(r[0] for r in results)
    return count / seconds, sum(r[1] for r in results) / max(count, 1)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def secret_key():
    return secrets.token_urlsafe(40)
