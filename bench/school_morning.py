"""The first morning of school (issue 7 §2): one lycée behind one address, one pupil flooding.

    python bench/school_morning.py [--pupils 1500] [--minutes 3] [--junk 1000] [--typos 0.3]
                                   [--junk-recovery 200] [--recovering 30]
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
identifiers and passwords) and `--junk-recovery` junk lost-password requests (random identifiers),
each spread over the first minute, never solving a challenge. Within that same minute,
`--recovering` classmates (other accounts, each with an address) ask « Besoin d'aide ? »: half a
reset link (lost password, by identifier), half their identifier (lost identifier, by address),
solving the challenge when the page shows it; their mails must be queued (counted in the queue
after the run: no mail worker runs, the relay is a dead address). A 503 (the server's admission
control shedding a request that waited too long) is retried after two seconds, as the page asks.

Prints how many pupils got in, refusals (a 429 or the lock message), challenges met, the p50/p95
latency of the login POSTs and of "arrived -> at home", the recovery requests served and mails
queued, and what the flood got; each latency next to the quiet reference measured in the same
run, before the morning. Asserts nothing: the machine is shared, read the figures with the load
average printed beside them.
"""

import argparse
import base64
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

from tests.servers import ProxiedClient  # noqa: E402

DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portail_bench_school"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
SCHOOL_ADDRESS = "203.0.113.5"
SCHOOL_NETWORK = "203.0.113.0/28=Lycée du Premier Matin"
PASSWORD = "cheval orange batterie agrafe"
# Logins timed one at a time before the morning: the reference the figures are compared with.
REFERENCE_LOGINS = 10
# Lost-password requests timed one at a time before the morning (reference of the recovery POSTs).
REFERENCE_RECOVERIES = 5
SHED_RETRIES = 5
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


def email_of(identifier: str) -> str:
    return f"{identifier}@eleves.example.org"


def create_pupils(n: int) -> list[str]:
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command

    from portail.accounts.identifiers import fold_email
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
                # Given at the first connection; bulk_create skips save(), which folds it.
                email=email_of(identifier),
                email_folded=fold_email(email_of(identifier)),
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


class Browser(ProxiedClient):
    """One pupil's browser behind the school's proxy: its cookies, and the address it comes from."""

    forwarded = SCHOOL_ADDRESS
    user_agent = "school-morning-bench"
    timeout = 60


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
        self.recovery_latencies = []  # every recovery POST of a classmate, seconds

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
            page = post(browser, "/auth/login", data, tally, tally.latencies, "login")
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
        if page.status == 503:  # shed by admission control SHED_RETRIES times in a row: capacity
            tally.add(f"gave up: 503 shed {SHED_RETRIES + 1} times in a row")
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


def post(browser, path, data, tally, latencies, what):
    """POST as a pupil would: a 503 (shed by admission control) is sent again two seconds later."""
    for attempt in range(SHED_RETRIES + 1):
        t0 = time.monotonic()
        page = browser.request(path, data)
        with tally.lock:
            latencies.append(time.monotonic() - t0)
        if page.status != 503 or attempt == SHED_RETRIES:
            return page
        tally.add(f"{what}: 503 shed, sent again")
        time.sleep(2)  # shed before Django read it: a solution it carried is still unspent
    return page


CHALLENGED = "vérification automatique de votre navigateur"


def recovering(port, identifier, kind, start_at, tally):
    """A classmate asking « Besoin d'aide ? » during the flood: a reset link, or the identifier."""
    time.sleep(max(0.0, start_at - time.monotonic()))
    browser = Browser(port)
    path, data = (
        ("/auth/lost-password", {"identifier": identifier})
        if kind == "password"
        else ("/auth/lost-identifier", {"email": email_of(identifier)})
    )
    page = browser.request(path)
    for _ in range(3):
        if MARKER in page.text:
            tally.add("recovery: challenges solved")
            data = {**data, "altcha": solve(page.text)}
        page = post(browser, path, data, tally, tally.recovery_latencies, "recovery")
        text = page.text.replace("&#x27;", "'")
        if page.status == 200 and CHALLENGED in text:
            continue  # over budget between the page and the POST: solve the new one, send again
        break
    if page.status == 302 and "envoye=1" in page.headers.get("Location", ""):
        tally.add(f"recovery ({kind}): sent page")
    elif page.status == 429:
        tally.add("recovery: refused (429)")
    else:
        tally.add(f"recovery ({kind}): other answer {page.status}")


def recovery_flooder(port, junk, seconds, tally):
    browser = Browser(port)
    browser.request("/auth/lost-password")
    start = time.monotonic()
    for i in range(junk):
        time.sleep(max(0.0, start + i * seconds / junk - time.monotonic()))
        page = browser.request("/auth/lost-password", {"identifier": "x" + secrets.token_hex(4)})
        text = page.text.replace("&#x27;", "'")
        if page.status == 200 and CHALLENGED in text:
            tally.add("junk recovery answered by a challenge (not served)")
        elif page.status == 200:
            tally.add("junk recovery served (unknown identifier)")
        else:
            tally.add(f"junk recovery answered {page.status}")


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
    parser.add_argument("--junk-recovery", type=int, default=200)
    parser.add_argument("--recovering", type=int, default=30, help="classmates asking for help")
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
    extra = REFERENCE_LOGINS + REFERENCE_RECOVERIES + args.recovering
    identifiers = create_pupils(args.pupils + extra)
    reference_pupils, identifiers = identifiers[:REFERENCE_LOGINS], identifiers[REFERENCE_LOGINS:]
    reference_recovering = identifiers[:REFERENCE_RECOVERIES]
    classmates = identifiers[REFERENCE_RECOVERIES : REFERENCE_RECOVERIES + args.recovering]
    identifiers = identifiers[REFERENCE_RECOVERIES + args.recovering :]
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
        for ident in reference_recovering:
            recovering(port, ident, "password", 0, quiet)
        recovery_reference = pct(quiet.recovery_latencies, 0.5)
        tally = Tally()
        rng = random.Random(7)
        window = args.minutes * 60
        begin = time.monotonic() + 1
        load_before = os.getloadavg()[0]
        floods = [
            threading.Thread(target=flooder, args=(port, args.junk, 60, tally)),
            threading.Thread(target=recovery_flooder, args=(port, args.junk_recovery, 60, tally)),
        ]
        for thread in floods:
            thread.start()
        with ThreadPoolExecutor(max_workers=args.clients + args.recovering) as pool:
            # The classmates ask within the flood's minute (after its first seconds).
            for i, ident in enumerate(classmates):
                kind = "password" if i % 2 == 0 else "identifier"
                pool.submit(recovering, port, ident, kind, begin + 5 + rng.random() * 55, tally)
            order = sorted((begin + rng.random() * window, ident) for ident in identifiers)
            for start_at, ident in order:
                pool.submit(pupil, port, ident, rng.random() < args.typos, start_at, tally)
        for thread in floods:
            thread.join()
        wall = time.monotonic() - begin
        load_after = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.log.close()

    from portail.mail.models import OutgoingMail

    queued = OutgoingMail.objects.filter(to__in=[email_of(i) for i in classmates]).count()
    school = "undeclared address" if args.no_school_network else "declared school network"
    print(
        f"\n{args.pupils} pupils over {args.minutes:g} min, {args.typos:.0%} mistyping once, "
        f"{args.junk} junk logins and {args.junk_recovery} junk lost-password requests in 1 min "
        f"from the same address ({school}), {args.recovering} classmates asking for help meanwhile; "
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
    rec = tally.recovery_latencies
    print(
        f"  recovery mails queued for the classmates: {queued} of {args.recovering} "
        "(one each expected)"
    )
    print(
        f"  reference: one quiet lost-password POST p50 {1000 * recovery_reference:7.0f} ms "
        f"({REFERENCE_RECOVERIES} requests, same run, before the morning)"
    )
    if rec:
        print(
            f"  recovery POST latency       p50 {1000 * pct(rec, 0.5):7.0f} ms   "
            f"p95 {1000 * pct(rec, 0.95):7.0f} ms   ({len(rec)} POSTs; "
            f"x{pct(rec, 0.5) / recovery_reference:.1f} / x{pct(rec, 0.95) / recovery_reference:.1f}"
            " the quiet reference)"
        )


if __name__ == "__main__":
    main()
