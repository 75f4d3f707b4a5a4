"""What bench/login.py, bench/overload.py and bench/slow_clients.py share: a real `portail serve` on
PostgreSQL + Redis with many accounts, a small asyncio HTTP client (loopback only), the Argon2id
reference of the same cores, and the CPU seconds the server's processes spent.

The database is the benchmarks' own (`portail_bench_serving`, dropped and recreated); Redis is
database 9. Nothing here asserts: figures are printed, with their reference measured in the run.
"""

import asyncio
import multiprocessing
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
DBNAME = "portail_bench_serving"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
PASSWORD = "cheval orange batterie agrafe"
IDENTIFIER = "bench.eleve{}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(port: int, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_",))}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"{POSTGRES}/{DBNAME}",
        REDIS_URL=REDIS_URL,
        PORTAIL_SECRET_KEY=env.get("PORTAIL_SECRET_KEY", "bench-only-" + "k" * 40),
        PORTAIL_BASE_URL=f"http://127.0.0.1:{port}",
        PORTAIL_ALLOWED_HOSTS="127.0.0.1",
        PORTAIL_VAR_DIR=str(ROOT / "var" / "bench-serving"),
        EMAIL_URL="smtp://127.0.0.1:1",
        PORTAIL_MAIL_DELIVER_ON_COMMIT="0",
    )
    env.update(extra)
    return env


def prepare_database(accounts: int) -> None:
    """Drop, create and migrate the bench database; `accounts` active pupils share one password."""
    import psycopg

    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DBNAME}"')
    env = server_env(0)
    subprocess.run(
        [sys.executable, "-m", "portail", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    code = (
        "from django.contrib.auth.hashers import make_password\n"
        "from portail.accounts.models import User, State, Profile\n"
        f"encoded = make_password({PASSWORD!r})\n"
        "User.objects.bulk_create([User(identifier=f'bench.eleve{i}', password=encoded, "
        "first_name='Eleve', last_name=f'Bench{i}', profile=Profile.ELEVE, state=State.ACTIVE) "
        f"for i in range({accounts})])\n"
    )
    subprocess.run(
        [sys.executable, "-m", "portail", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


class Server:
    """`portail serve` in a subprocess; its output goes to var/bench-serving/serve.log."""

    def __init__(self, workers: int = 2, **env):
        self.port = free_port()
        self.workers = workers
        self.env = server_env(self.port, **env)
        self.log_path = ROOT / "var" / "bench-serving" / "serve.log"

    def __enter__(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed in __exit__)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portail", "serve", "--bind", f"127.0.0.1:{self.port}"]
            + ["--workers", str(self.workers)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(self.log_path.read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                status, _, _ = asyncio.run(fetch(self.port, "GET", "/healthz"))
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("portail serve did not start")
            time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the master and its workers so far."""
        pids = [self.process.pid]
        children = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        pids += [int(p) for p in children]
        return sum(process_cpu(pid) for pid in pids)


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


def _hash_for(seconds: float, memory: int, time_cost: int, parallelism: int, out) -> None:
    from argon2 import PasswordHasher, Type

    hasher = PasswordHasher(
        time_cost=time_cost, memory_cost=memory, parallelism=parallelism, type=Type.ID
    )
    encoded = hasher.hash(PASSWORD)
    count, end, cpu = 0, time.monotonic() + seconds, time.process_time()
    while time.monotonic() < end:
        hasher.verify(encoded, PASSWORD)
        count += 1
    out.put((count, time.process_time() - cpu))


def argon2_limit(processes: int, seconds: float) -> tuple[float, float]:
    """Argon2id verifications per second of `processes` processes with the portal's parameters,
    and the CPU seconds one verification costs (what an idle machine's limit follows from)."""
    memory = int(os.environ.get("PORTAIL_ARGON2_MEMORY_KIB", 19 * 1024))
    time_cost = int(os.environ.get("PORTAIL_ARGON2_TIME_COST", 2))
    parallelism = int(os.environ.get("PORTAIL_ARGON2_PARALLELISM", 1))
    out = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=_hash_for, args=(seconds, memory, time_cost, parallelism, out)
        )
        for _ in range(processes)
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
