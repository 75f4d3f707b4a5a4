"""Single sign-on throughput on this machine: through `portail serve` over HTTP, and in one process.

    python bench/sso.py [--seconds 3] [--clients 4] [--codes 400] [--no-lane-variant]
                        [--in-process] [-n 2000] [--oidc 300]

Over HTTP (issue 9 §6, the default): `portail serve --workers 2` on PostgreSQL (database
`portail_bench_sso3`, created if missing, migrated) and Redis (database 13), loopback only. One
login through the form gives the session cookie; then, with --clients concurrent keep-alive
connections (an asyncio client in this process):

- the reference: GET /health/live (the floor of the stack: uvicorn, admission, Django, no SQL);
- CAS: ticket issuance (GET /cas/login, logged in) and /cas/p3/serviceValidate of each ticket;
- OIDC: GET /o/authorize/ (codes), then POST /o/token/ code exchange and refresh, public client
  (PKCE) and confidential client (client_secret_basic + PKCE), and /o/userinfo/.

Each line prints requests per second (wall), and per core: requests per CPU-second spent by the
server's processes (gunicorn master and workers), and per CPU-second of the server plus its
PostgreSQL backends. Non-200 answers are counted by status: the admission layer's login lane
(PORTAIL_EXPENSIVE_PATHS includes /o/token/) may shed token requests with 503. Unless
--no-lane-variant, the token lines are measured again by a second server whose lane leaves
/o/token/ out, so the two can be compared in the same run.

In process (--in-process, the former bench): django.test.Client drives the application with no
network and no server workers; -n CAS tickets, --oidc logins.

Prints figures; asserts nothing (they vary with the machine and its load: read them as ratios
to the reference of the same run).
"""

import argparse
import asyncio
import base64
import hashlib
import os
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portail_bench_sso3")
# What the settings require outside DEBUG; the bench sends no mail and speaks plain HTTP in-process.
os.environ.setdefault("PORTAIL_BASE_URL", "https://ent.example.test")
os.environ.setdefault("EMAIL_URL", "smtp://127.0.0.1:25")
os.environ.setdefault("PORTAIL_SSL_REDIRECT", "0")
os.environ.setdefault("PORTAIL_SECRET_KEY", "bench-only-secret-key-not-for-production-use")
os.environ.setdefault("PORTAIL_ALLOWED_HOSTS", "testserver")
os.environ.setdefault("PORTAIL_LOG_LEVEL", "ERROR")
# Tickets are issued in batches before being validated: give them time to wait their turn.
# (The expiry check is the same WHERE clause whatever the lifetime.)
os.environ.setdefault("PORTAIL_CAS_TICKET_SECONDS", "600")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portail.settings")

SERVICE = "https://notes.example.test/cas/callback"
REDIRECT_URI = "https://rp.example.test/callback"


def ensure_database(url: str):
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_data():
    from django.core.management import call_command
    from oauth2_provider.models import Application as Client

    from portail.accounts.models import Profile, State, User
    from portail.directory.models import SchoolClass, Structure
    from portail.sso.models import Application

    call_command("migrate", verbosity=0)
    school, _ = Structure.objects.get_or_create(uai="0759999Z", defaults={"name": "Lycée Bench"})
    klass, _ = SchoolClass.objects.get_or_create(structure=school, name="2nde 1")
    user = User.objects.filter(identifier="bench.eleve").first()
    if user is None:
        user = User.objects.create_user(
            "bench.eleve",
            None,
            first_name="Bench",
            last_name="Élève",
            profile=Profile.ELEVE,
            state=State.ACTIVE,
            email="bench@example.org",
        )
    user.structures.set([school])
    user.classes.set([klass])
    Application.objects.update_or_create(
        name="Bench CAS",
        defaults=dict(
            short_label="BC",
            url="https://notes.example.test/",
            kind=Application.Kind.CAS,
            cas_service_patterns="https://notes.example.test/",
            cas_single_logout=False,
        ),
    )
    client = Client.objects.filter(name="Bench OIDC").first()
    if client is None:
        client = Client.objects.create(
            name="Bench OIDC",
            client_type=Client.CLIENT_PUBLIC,
            authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
            redirect_uris=REDIRECT_URI,
            algorithm=Client.RS256_ALGORITHM,
            skip_authorization=True,
        )
    Application.objects.update_or_create(
        name="Bench OIDC",
        defaults=dict(
            short_label="BO", url="https://rp.example.test/", kind="oidc", oidc_client=client
        ),
    )
    # A confidential client too (Moodle, Nextcloud): its secret is checked at each token request.
    # The secret is stored hashed (the toolkit uses the password hasher), so a new one per run.
    Client.objects.filter(name="Bench OIDC confidentiel").delete()
    secret = secrets.token_urlsafe(32)
    confidential = Client.objects.create(
        name="Bench OIDC confidentiel",
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
        client_secret=secret,
        algorithm=Client.RS256_ALGORITHM,
        skip_authorization=True,
    )
    Application.objects.update_or_create(
        name="Bench OIDC confidentiel",
        defaults=dict(
            short_label="BK", url="https://rp.example.test/", kind="oidc", oidc_client=confidential
        ),
    )
    return user, client, (confidential, secret)


class Timer:
    """Wall clock, and this process's CPU time: on a shared machine the second tells what one
    core does (PostgreSQL's own CPU is in its processes, not counted here)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def rate(count, timer):
    return (
        f"{count / timer.wall:7.0f} /s wall, {count / timer.cpu:7.0f} /s per CPU-second "
        f"({count} in {timer.wall:.2f} s, {1000 * timer.wall / count:.2f} ms each)"
    )


def bench_cas(browser, server, n):
    tickets = []
    with Timer() as issued:
        for _ in range(n):
            location = browser.get("/cas/login", {"service": SERVICE})["Location"]
            tickets.append(parse_qs(urlsplit(location).query)["ticket"][0])

    with Timer() as validated:
        for ticket in tickets:
            body = server.get("/cas/p3/serviceValidate", {"ticket": ticket, "service": SERVICE})
            if b"<cas:user>bench.eleve</cas:user>" not in body.content:
                raise SystemExit(f"validation failed: {body.content[:300]!r}")
    print(f"CAS ticket issuance (/cas/login)         {rate(n, issued)}")
    print(f"CAS serviceValidate (/p3/serviceValidate) {rate(n, validated)}")


def bench_oidc(browser, server, client, n, secret=None, label="public client"):
    auth = {}
    if secret:
        basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
        auth = {"HTTP_AUTHORIZATION": f"Basic {basic}"}
    tokens = []
    logins = Timer().__enter__()
    for _ in range(n):
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        location = browser.get(
            "/o/authorize/",
            {
                "response_type": "code",
                "client_id": client.client_id,
                "redirect_uri": REDIRECT_URI,
                "scope": "openid profile ent",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "nonce": secrets.token_urlsafe(8),
            },
        )["Location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        answer = server.post(
            "/o/token/",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": client.client_id,
                "code_verifier": verifier,
            },
            **auth,
        ).json()
        if "id_token" not in answer:
            raise SystemExit(f"token failed: {answer}")
        tokens.append(answer["access_token"])
    logins.__exit__()

    with Timer() as userinfo:
        for token in tokens:
            info = server.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {token}").json()
            if info.get("identifier") != "bench.eleve":
                raise SystemExit(f"userinfo failed: {info}")
    print(f"OIDC code+PKCE logins, {label:19} {rate(n, logins)}")
    print(f"OIDC userinfo (/o/userinfo/)              {rate(n, userinfo)}")


# --- Over HTTP, through `portail serve` (issue 9 §6) ---------------------------------------------

HTTP_DB = os.environ.get("BENCH_SSO_DB", "portail_bench_sso3")
HTTP_REDIS = os.environ.get("BENCH_SSO_REDIS_URL", "redis://127.0.0.1:6379/13")
HTTP_PASSWORD = "cheval orange batterie agrafe"
# The default lane of portail/settings.py without /o/token/ (the variant measured alongside).
LANE_WITHOUT_TOKEN = (
    "/auth/login,/auth/activation,/auth/reset/,/auth/lost-,/compte/mot-de-passe,/cas/v1/tickets"
)

SEED = """
import json
from oauth2_provider.models import Application as Client
from portail.accounts.models import Profile, State, User
from portail.directory.models import SchoolClass, Structure
from portail.sso.models import Application

school, _ = Structure.objects.get_or_create(uai="0759999Z", defaults={"name": "Lycée Bench"})
klass, _ = SchoolClass.objects.get_or_create(structure=school, name="2nde 1")
User.objects.filter(identifier="bench.http").delete()
user = User.objects.create_user(
    "bench.http", PASSWORD, first_name="Bench", last_name="Élève", profile=Profile.ELEVE,
    state=State.ACTIVE, email="bench@example.org",
)
user.structures.set([school])
user.classes.set([klass])
Application.objects.filter(name__startswith="Bench HTTP").delete()
Client.objects.filter(name__startswith="Bench HTTP").delete()
Application.objects.create(
    name="Bench HTTP CAS", short_label="BC", url="https://notes.example.test/",
    kind=Application.Kind.CAS, cas_service_patterns="https://notes.example.test/",
    cas_single_logout=False,
)
out = {}
for kind, client_type in (("public", Client.CLIENT_PUBLIC),
                          ("confidential", Client.CLIENT_CONFIDENTIAL)):
    secret = SECRET
    client = Client.objects.create(
        name="Bench HTTP " + kind, client_type=client_type,
        authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE, redirect_uris=REDIRECT,
        client_secret=secret, algorithm=Client.RS256_ALGORITHM, skip_authorization=True,
    )
    Application.objects.create(
        name="Bench HTTP " + kind, short_label="BO", url="https://rp.example.test/",
        kind="oidc", oidc_client=client,
    )
    out[kind] = client.client_id
print(json.dumps(out))
"""


def http_prepare(env) -> dict:
    """Create (if missing) and migrate the database, and seed the pupil and the applications."""
    import json
    import subprocess

    ensure_database(f"postgres://postgres@127.0.0.1:5432/{HTTP_DB}")
    run = dict(cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    subprocess.run([sys.executable, "-m", "portail", "migrate", "--noinput"], **run)
    secret = secrets.token_urlsafe(32)
    code = (
        SEED.replace("PASSWORD", repr(HTTP_PASSWORD))
        .replace("SECRET", repr(secret))
        .replace("REDIRECT", repr(REDIRECT_URI))
    )
    done = subprocess.run([sys.executable, "-m", "portail", "shell", "-c", code], **run)
    clients = json.loads(done.stdout.strip().splitlines()[-1])
    return {"public": (clients["public"], None), "confidential": (clients["confidential"], secret)}


class Connection:
    """One keep-alive HTTP/1.1 connection (what a relying party's HTTP client pool holds)."""

    def __init__(self, port):
        self.port = port
        self.reader = self.writer = None

    async def request(self, method, path, body=b"", headers=None):
        from _serving import build, read_answer

        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(build(self.port, method, path, body, headers))
        await self.writer.drain()
        status, answer_headers, content = await read_answer(self.reader)
        if answer_headers.get("connection") == ["close"]:
            self.close()
        return status, answer_headers, content

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


def pg_backends_cpu() -> dict:
    from _serving import process_cpu

    found = subprocess_out(["pgrep", "-f", f"postgres: .*{HTTP_DB}"])
    return {int(pid): process_cpu(int(pid)) for pid in found.split()}


def subprocess_out(command) -> str:
    import subprocess

    return subprocess.run(command, capture_output=True, text=True).stdout


class Phase:
    """`clients` connections drain a list of requests; wall time, statuses, server and PG CPU."""

    def __init__(self, server, label, clients):
        self.server, self.label, self.clients = server, label, clients

    def run(self, items, make, check=None):
        """make(item) -> (method, path, body, headers); check(item, status, headers, body) -> result."""
        self.results = [None] * len(items)
        self.statuses = {}
        queue = list(enumerate(items))
        queue.reverse()

        async def worker():
            connection = Connection(self.server.port)
            try:
                while queue:
                    index, item = queue.pop()
                    status, headers, body = await connection.request(*make(item))
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    if check is not None:
                        self.results[index] = check(item, status, headers, body)
            finally:
                connection.close()

        async def go():
            await asyncio.gather(*(worker() for _ in range(self.clients)))

        cpu, pg = self.server.cpu_seconds(), pg_backends_cpu()
        wall = time.perf_counter()
        asyncio.run(go())
        self.wall = time.perf_counter() - wall
        self.cpu = self.server.cpu_seconds() - cpu
        self.pg = sum(v - pg.get(pid, 0.0) for pid, v in pg_backends_cpu().items())
        self.count = len(items)
        return self

    def line(self, reference=None) -> str:
        others = {k: v for k, v in self.statuses.items() if k not in (200, 302)}
        text = (
            f"{self.label:50} {self.count / self.wall:7.0f}/s wall"
            f"  {self.count / max(self.cpu, 1e-9):6.0f}/s per server CPU-s"
            f"  {self.count / max(self.cpu + self.pg, 1e-9):6.0f}/s per (server+PG) CPU-s"
        )
        if reference is not None:
            text += f"  ×{(self.count / self.wall) / reference:.2f} of the reference"
        if others:
            text += "  NOT 200: " + ", ".join(f"{k}×{v}" for k, v in sorted(others.items()))
        return text


def pkce_pair():
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def form(data) -> bytes:
    from urllib.parse import urlencode

    return urlencode(data).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def token_headers(client_id, secret):
    if secret is None:
        return dict(FORM)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {**FORM, "Authorization": f"Basic {basic}"}


def http_token_phases(server, clients, cookie, args, reference, suffix=""):
    """Codes, then code exchange and refresh for both clients; returns the access tokens."""
    import json
    from urllib.parse import urlencode

    access = []
    for kind, (client_id, secret) in clients.items():
        pairs = [pkce_pair() for _ in range(args.codes)]

        def authorize(pair, client_id=client_id):
            query = urlencode(
                {
                    "response_type": "code",
                    "client_id": client_id,
                    "redirect_uri": REDIRECT_URI,
                    "scope": "openid profile ent",
                    "code_challenge": pair[1],
                    "code_challenge_method": "S256",
                    "nonce": secrets.token_urlsafe(8),
                    "state": secrets.token_urlsafe(8),
                }
            )
            return "GET", "/o/authorize/?" + query, b"", cookie

        def code_of(pair, status, headers, body):
            location = headers.get("location", [""])[0]
            return parse_qs(urlsplit(location).query)["code"][0], pair[0]

        codes = Phase(server, f"OIDC /o/authorize/ (codes), {kind}", args.clients)
        codes_list = codes.run(pairs, authorize, code_of).results
        print(codes.line(reference))

        headers = token_headers(client_id, secret)

        def exchange(item, client_id=client_id, headers=headers):
            code, verifier = item
            return (
                "POST",
                "/o/token/",
                form(
                    {
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT_URI,
                        "client_id": client_id,
                        "code_verifier": verifier,
                    }
                ),
                headers,
            )

        def tokens_of(item, status, headers, body):
            return json.loads(body) if status == 200 else None

        label = f"OIDC /o/token/ code exchange, {kind}{suffix}"
        phase = Phase(server, label, args.clients).run(codes_list, exchange, tokens_of)
        print(phase.line(reference))
        answers = [a for a in phase.results if a]

        def refresh(answer, client_id=client_id, headers=headers):
            return (
                "POST",
                "/o/token/",
                form(
                    {
                        "grant_type": "refresh_token",
                        "refresh_token": answer["refresh_token"],
                        "client_id": client_id,
                    }
                ),
                headers,
            )

        label = f"OIDC /o/token/ refresh, {kind}{suffix}"
        phase = Phase(server, label, args.clients).run(answers, refresh, tokens_of)
        print(phase.line(reference))
        # The refresh revoked the exchange's access tokens (rotation): these are the live ones.
        access += [a["access_token"] for a in phase.results if a]
    return access


def run_http(args):
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _serving import Server, fetch, load_average, login_credentials

    extra = dict(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{HTTP_DB}",
        REDIS_URL=HTTP_REDIS,
        PORTAIL_VAR_DIR=str(ROOT / "var" / "bench-sso3"),
        PORTAIL_LOG_LEVEL="ERROR",
        # Tickets are issued in a batch before being validated (the expiry check is the same
        # WHERE clause whatever the lifetime).
        PORTAIL_CAS_TICKET_SECONDS="600",
    )
    from _serving import server_env

    clients = http_prepare(server_env(0, **extra))
    print(
        f"Portail SSO over HTTP — portail serve --workers 2, PostgreSQL {HTTP_DB}, "
        f"Redis {HTTP_REDIS}, {args.clients} keep-alive clients, {os.cpu_count()} cores, "
        f"load average {load_average()} (the machine is shared: read ratios to the reference)"
    )
    variants = [("", {})]
    if not args.no_lane_variant:
        variants.append(
            (" [lane without /o/token/]", {"PORTAIL_EXPENSIVE_PATHS": LANE_WITHOUT_TOKEN})
        )
    for suffix, lane in variants:
        with Server(workers=2, **extra, **lane) as server:
            cookie_header, token = asyncio.run(login_credentials(server.port))
            body = form(
                {
                    "csrfmiddlewaretoken": token,
                    "identifier": "bench.http",
                    "password": HTTP_PASSWORD,
                }
            )
            status, headers, _ = asyncio.run(
                fetch(server.port, "POST", "/auth/login", body, {**cookie_header, **FORM})
            )
            if status != 302:
                raise SystemExit(f"login failed: {status}")
            session = next(c for c in headers["set-cookie"] if c.startswith("portail_session="))
            cookie = {"Cookie": session.split(";", 1)[0]}
            if suffix:
                print(f"-- second server{suffix}, load average {load_average()}")

            # Warm-up, then the reference: the floor of the stack.
            live = lambda item: ("GET", "/health/live", b"", None)  # noqa: E731
            Phase(server, "warm-up", args.clients).run(range(200), live)
            ref = Phase(server, "reference: GET /health/live", args.clients)
            ref.run(range(args.reference), live)
            reference = ref.count / ref.wall
            print(ref.line())

            if not suffix:
                service = SERVICE.replace(":", "%3A").replace("/", "%2F")

                def login(item, service=service, cookie=cookie):
                    return "GET", "/cas/login?service=" + service, b"", cookie

                def ticket_of(item, status, headers, body):
                    location = headers["location"][0]
                    return parse_qs(urlsplit(location).query)["ticket"][0]

                # One client: every request saves the same session.
                issued = Phase(server, "CAS /cas/login (ticket issuance, 1 client)", 1)
                tickets = issued.run(range(args.tickets), login, ticket_of).results
                print(issued.line(reference))

                def validate(ticket):
                    query = f"ticket={ticket}&service={SERVICE}"
                    return "GET", "/cas/p3/serviceValidate?" + query, b"", None

                def validated(ticket, status, headers, body):
                    return b"<cas:user>bench.http</cas:user>" in body

                phase = Phase(server, "CAS /cas/p3/serviceValidate", args.clients)
                phase.run(tickets, validate, validated)
                print(phase.line(reference) + f"  ({sum(map(bool, phase.results))} valid)")

            access = http_token_phases(server, clients, cookie, args, reference, suffix)

            if not suffix:
                tokens = (access * (args.userinfo // max(len(access), 1) + 1))[: args.userinfo]

                def userinfo(token):
                    return "GET", "/o/userinfo/", b"", {"Authorization": f"Bearer {token}"}

                def read(token, status, headers, body):
                    return status == 200 and json.loads(body).get("identifier") == "bench.http"

                phase = Phase(server, "OIDC /o/userinfo/", args.clients)
                phase.run(tokens, userinfo, read)
                print(phase.line(reference) + f"  ({sum(map(bool, phase.results))} read)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP connections")
    parser.add_argument("--tickets", type=int, default=600, help="CAS tickets over HTTP")
    parser.add_argument("--codes", type=int, default=100, help="codes per OIDC client over HTTP")
    parser.add_argument("--userinfo", type=int, default=600, help="userinfo requests over HTTP")
    parser.add_argument("--reference", type=int, default=1200, help="GET /health/live requests")
    parser.add_argument("--no-lane-variant", action="store_true", help="one server only")
    parser.add_argument("--in-process", action="store_true", help="also the in-process bench")
    parser.add_argument("-n", type=int, default=2000, help="CAS tickets in process")
    parser.add_argument("--oidc", type=int, default=300, help="OIDC logins in process")
    args = parser.parse_args()

    run_http(args)
    if args.in_process:
        run_in_process(args)


def run_in_process(args):
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    user, oidc_client, (confidential, secret) = setup_data()
    browser, server = Client(), Client()
    browser.force_login(user)
    db = settings.DATABASES["default"]
    print(f"Portail SSO bench — {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}, one process")
    bench_cas(browser, server, min(args.n, 200))  # warm-up (connections, caches, templates)
    bench_cas(browser, server, args.n)
    if args.oidc:
        bench_oidc(browser, server, oidc_client, min(args.oidc, 20))  # warm-up
        bench_oidc(browser, server, oidc_client, args.oidc)
        bench_oidc(browser, server, confidential, args.oidc // 4, secret, "confidential client")


if __name__ == "__main__":
    main()
