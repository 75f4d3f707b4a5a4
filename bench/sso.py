"""Single sign-on throughput on this machine, in one process, against PostgreSQL.

    python bench/sso.py [-n 2000]   (DATABASE_URL defaults to …/portail_bench_sso, its own)

Creates (or reuses) the database, a school, a pupil, a CAS service and an OIDC client, then
drives the WSGI application in-process with django.test.Client (no network, no server workers):

- CAS ticket issuance: GET /cas/login?service=… by a logged-in pupil (302 with ticket=);
- CAS serviceValidate: GET /cas/p3/serviceValidate of each of those tickets (XML with attributes);
- OIDC authorization-code logins: GET /o/authorize/ (PKCE S256) then POST /o/token/ (public
  client, so the figure measures the flow rather than the client secret's password hash);
- OIDC userinfo with the access token.

Prints per-second figures; asserts nothing (figures vary with the machine and its load).
"""

import argparse
import base64
import hashlib
import os
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portail_bench_sso")
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="CAS tickets per run")
    parser.add_argument("--oidc", type=int, default=300, help="OIDC logins per run")
    args = parser.parse_args()

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
