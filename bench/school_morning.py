"""The first morning of school (issue 7 §2): one lycée behind one address, one pupil flooding.

    python bench/school_morning.py [--pupils 1500] [--minutes 3] [--junk 1000] [--typos 0.3]
                                   [--no-school-network] [--workers 2]

Starts the real server (`python -m portail serve`, gunicorn, `--workers 2`) on PostgreSQL (its own
database, `portail_bench_school`, dropped and recreated) and Redis (database 5), behind a
pretended proxy: PORTAIL_BEHIND_PROXY=1 and every request carries the school's address in
X-Forwarded-For. By default that address is declared in PORTAIL_SCHOOL_NETWORKS (school budget);
--no-school-network leaves it a plain address (the small per-address budget).

`--pupils` accounts are created at once (bulk_create, one shared Argon2 hash). Each pupil arrives
at a random moment within `--minutes`, opens the login page, mistypes the password once with
probability `--typos`, then types it right; when the page asks for the proof-of-work challenge,
the pupil's "browser" solves it (the same SHA-256 search as challenge.js, in Python) and sends
the form again. Meanwhile one pupil of the same address sends `--junk` junk logins (random
identifiers and passwords) spread over one minute, never solving a challenge.

Prints how many pupils got in, refusals (a 429 or the lock message), challenges met, the p50/p95
latency of the login POSTs and of "arrived -> at home", and what the flood got. Asserts nothing:
the machine is shared, read the figures with the load average printed beside them.
"""

import argparse
import base64
import http.cookies
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portail_bench_school"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
SCHOOL_ADDRESS = "203.0.113.5"
SCHOOL_NETWORK = "203.0.113.0/28=Lycée du Premier Matin"
PASSWORD = "cheval orange batterie agrafe"
# Logins timed one at a time before the morning: the reference the figures are compared with.
REFERENCE_LOGINS = 10
SECRET_KEY = "bench-only-secret-key-school-morning-not-for-production"

ENV = {
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "PORTAIL_SECRET_KEY": SECRET_KEY,
    "PORTAIL_BASE_URL": "https://127.0.0.1",
    "PORTAIL_ALLOWED_HOSTS": "127.0.0.1",
    "PORTAIL_BEHIND_PROXY": "1",
    "EMAIL_URL": "smtp://127.0.0.1:1",
    "PORTAIL_MAIL_DELIVER_ON_COMMIT": "0",
    "PORTAIL_LOG_LEVEL": "ERROR",
}


def ensure_fresh_database():
    import psycopg

    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def clear_redis():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter("portail:*"))
    if keys:
        client.delete(*keys)
    client.close()


def create_pupils(n: int) -> list[str]:
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command

    from portail.accounts.models import Profile, State, User

    call_command("migrate", verbosity=0)
    shared = make_password(PASSWORD)  # one Argon2 hash for all: creation takes a second
    identifiers = [f"eleve.matin{i:05d}" for i in range(n)]
    User.objects.bulk_create(
        [
            User(
                identifier=identifier,
                password=shared,
                first_name="Élève",
                last_name=f"Matin {i}",
                profile=Profile.ELEVE,
                state=State.ACTIVE,
            )
            for i, identifier in enumerate(identifiers)
        ],
        batch_size=1000,
    )
    return identifiers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port, workers, school_network, log_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAIL_", "DJANGO_"))}
    env |= ENV | {"PYTHONPATH": str(ROOT), "PORTAIL_VAR_DIR": str(log_path.parent)}
    if school_network:
        env["PORTAIL_SCHOOL_NETWORKS"] = SCHOOL_NETWORK
    log = open(log_path, "wb")  # noqa: SIM115 (closed with the server)
    server = subprocess.Popen(
        [sys.executable, "-m", "portail", "serve", "--bind", f"127.0.0.1:{port}"]
        + ["--workers", str(workers)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server.log = log
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            log.flush()
            raise RuntimeError("portail serve exited:\n" + log_path.read_text())
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)  # noqa: S310
            return server
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


class Browser:
    """One pupil's browser behind the school's proxy: its cookies, and the address it comes from."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.origin = f"https://127.0.0.1:{port}"
        self.jar = {}

    def request(self, path, data=None):
        headers = {
            "User-Agent": "school-morning-bench",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": SCHOOL_ADDRESS,
        }
        if self.jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        body = None
        if data is not None:
            data = {"csrfmiddlewaretoken": self.jar.get("csrftoken", ""), **data}
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
        req = urllib.request.Request(self.base + path, data=body, headers=headers)  # noqa: S310
        try:
            response = OPENER.open(req, timeout=60)
        except urllib.error.HTTPError as error:
            response = error
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in http.cookies.SimpleCookie(header).items():
                if morsel["max-age"] == "0" or morsel.value == "":
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value
        response.text = response.read().decode()
        return response


MARKER = '<script id="portail-challenge" type="application/json">'


def solve(page: str) -> str:
    import altcha

    raw = page[page.index(MARKER) + len(MARKER) :].split("</script>", 1)[0]
    data = json.loads(raw)
    solution = altcha.solve_challenge_v1(
        data["challenge"], data["salt"], data["algorithm"], data["maxNumber"]
    )
    payload = {k: data[k] for k in ("algorithm", "challenge", "salt", "signature")}
    payload["number"] = solution.number
    return base64.b64encode(json.dumps(payload).encode()).decode()


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.latencies = []  # every login POST of a pupil, seconds
        self.time_to_home = []  # arrival -> at home, seconds

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n


def pupil(port, identifier, typo, start_at, tally):
    time.sleep(max(0.0, start_at - time.monotonic()))
    arrived = time.monotonic()
    browser = Browser(port)
    page = browser.request("/auth/login")
    attempts = ([("faux " + secrets.token_hex(3))] if typo else []) + [PASSWORD]
    for password in attempts:
        data = {"identifier": identifier, "password": password}
        if MARKER in page.text:
            tally.add("challenges solved")
            data["altcha"] = solve(page.text)
        for _ in range(3):  # a challenge that appeared meanwhile: solve it, send again
            t0 = time.monotonic()
            page = browser.request("/auth/login", data)
            with tally.lock:
                tally.latencies.append(time.monotonic() - t0)
            text = page.text.replace("&#x27;", "'")
            if page.status == 200 and "vérification automatique de votre navigateur" in text:
                tally.add("challenges met after a POST")
                data["altcha"] = solve(page.text)
                continue
            break
        text = page.text.replace("&#x27;", "'")
        if page.status == 429 or "Trop d'essais infructueux" in text:
            tally.add("refused")
            return
        if page.status >= 500:
            tally.add("server errors")
            return
    if page.status == 302 and page.headers["Location"] == "/":
        tally.add("got in")
        with tally.lock:
            tally.time_to_home.append(time.monotonic() - arrived)
    else:
        tally.add(f"other answer {page.status}")


def flooder(port, junk, seconds, tally):
    browser = Browser(port)
    browser.request("/auth/login")
    start = time.monotonic()
    for i in range(junk):
        time.sleep(max(0.0, start + i * seconds / junk - time.monotonic()))
        page = browser.request(
            "/auth/login",
            {"identifier": "x" + secrets.token_hex(4), "password": secrets.token_hex(6)},
        )
        text = page.text.replace("&#x27;", "'")
        if page.status == 200 and "vérification automatique de votre navigateur" in text:
            tally.add("junk answered by a challenge (no password check)")
        elif page.status == 200:
            tally.add("junk checked (one Argon2 each)")
        else:
            tally.add(f"junk answered {page.status}")


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pupils", type=int, default=1500)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--typos", type=float, default=0.3)
    parser.add_argument("--junk", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=48, help="pupils' requests in flight")
    parser.add_argument("--no-school-network", action="store_true")
    args = parser.parse_args()

    for key, value in ENV.items():
        os.environ[key] = value
    os.environ["DJANGO_SETTINGS_MODULE"] = "portail.settings"
    ensure_fresh_database()
    clear_redis()
    import django

    django.setup()
    t0 = time.monotonic()
    identifiers = create_pupils(args.pupils + REFERENCE_LOGINS)
    reference_pupils, identifiers = identifiers[:REFERENCE_LOGINS], identifiers[REFERENCE_LOGINS:]
    print(f"{len(identifiers)} pupils created in {time.monotonic() - t0:.1f} s")

    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="school-morning-"))
    port = free_port()
    server = start_server(port, args.workers, not args.no_school_network, tmp / "server.log")
    try:
        # The reference, in the same run: one login at a time, before the morning starts.
        quiet = Tally()
        for ident in reference_pupils:
            pupil(port, ident, False, 0, quiet)
        reference = pct(quiet.latencies, 0.5)
        tally = Tally()
        rng = random.Random(7)
        window = args.minutes * 60
        begin = time.monotonic() + 1
        load_before = os.getloadavg()[0]
        flood = threading.Thread(target=flooder, args=(port, args.junk, 60, tally))
        flood.start()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            order = sorted((begin + rng.random() * window, ident) for ident in identifiers)
            for start_at, ident in order:
                pool.submit(pupil, port, ident, rng.random() < args.typos, start_at, tally)
        flood.join()
        wall = time.monotonic() - begin
        load_after = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.log.close()

    school = "undeclared address" if args.no_school_network else "declared school network"
    print(
        f"\n{args.pupils} pupils over {args.minutes:g} min, {args.typos:.0%} mistyping once, "
        f"{args.junk} junk logins in 1 min from the same address ({school}); "
        f"{args.workers} gunicorn workers; {wall:.0f} s wall; "
        f"load average {load_before:.1f} -> {load_after:.1f} (shared machine)"
    )
    for key in sorted(tally.counts):
        print(f"  {key:52s} {tally.counts[key]:6d}")
    lat, home = tally.latencies, tally.time_to_home
    print(
        f"  reference: one quiet login POST p50 {1000 * reference:7.0f} ms "
        f"({REFERENCE_LOGINS} logins, same run, before the morning)"
    )
    print(
        f"  login POST latency          p50 {1000 * pct(lat, 0.5):7.0f} ms   "
        f"p95 {1000 * pct(lat, 0.95):7.0f} ms   ({len(lat)} POSTs)"
    )
    print(
        f"  arrival -> at home          p50 {1000 * pct(home, 0.5):7.0f} ms   "
        f"p95 {1000 * pct(home, 0.95):7.0f} ms   (includes solving challenges)"
    )
    if lat:
        print(
            f"  ratios to the quiet reference: p50 x{pct(lat, 0.5) / reference:.1f}, "
            f"p95 x{pct(lat, 0.95) / reference:.1f}; mean {1000 * statistics.mean(lat):.0f} ms"
        )


if __name__ == "__main__":
    main()
