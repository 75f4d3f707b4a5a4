"""SAML IdP cost on this machine: one SP-initiated login, as the portal and as the SP see it.

    python bench/saml_idp.py [-n 100] [--encrypt]

In one process (django.test.Client, no network), on PostgreSQL (DATABASE_URL, default the
database `portail_samlidp`, migrated): a logged-in pupil, a provider registered from the metadata
of pysaml2's Saml2Client. Each round: the SP's AuthnRequest (HTTP-Redirect) → /saml/sso →
/saml/sso/suite/… (the signed Response, with --encrypt an encrypted assertion) → the SP checks
it. Prints milliseconds per login on the portal's side (both requests, most of it xmlsec1
signing: two signatures, each a child process) and on the SP's side (validation), and the CPU
spent in this process and in the xmlsec1 children. Also GET /saml/metadata. Asserts nothing.
"""

import argparse
import os
import re
import resource
import sys
import tempfile
import time
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PORTAIL_BASE_URL", "https://ent.example.test")
os.environ.setdefault("EMAIL_URL", "smtp://127.0.0.1:25")
os.environ.setdefault("PORTAIL_SSL_REDIRECT", "0")
os.environ.setdefault("PORTAIL_SECRET_KEY", "bench-only-secret-key-not-for-production-use")
os.environ.setdefault("PORTAIL_ALLOWED_HOSTS", "testserver")
os.environ.setdefault("PORTAIL_LOG_LEVEL", "ERROR")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portail_samlidp")
# The test settings: templates rendered without collectstatic (no manifest).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def ensure_database(url: str):
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="logins")
    parser.add_argument("--encrypt", action="store_true", help="encrypted assertions")
    args = parser.parse_args()
    if os.environ["DATABASE_URL"].startswith("postgres"):
        ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import entity_descriptor

    from portail.accounts.models import Profile, State, User
    from portail.directory.models import Structure
    from portail.federation.idp.keys import generate_pair
    from portail.federation.idp.models import ServiceProvider

    call_command("migrate", verbosity=0)
    tmp = Path(tempfile.mkdtemp(prefix="saml-bench-"))
    generate_pair(tmp / "sp-key.pem", tmp / "sp-cert.pem", "bench SP")
    school, _ = Structure.objects.get_or_create(uai="0759999Z", defaults={"name": "Lycée Bench"})
    user, _ = User.objects.get_or_create(
        identifier="bench.saml",
        defaults={
            "first_name": "Léa",
            "last_name": "Bench",
            "profile": Profile.ELEVE,
            "state": State.ACTIVE,
        },
    )
    user.structures.set([school])
    browser = Client()
    browser.force_login(user)
    idp_metadata = browser.get("/saml/metadata").content.decode()
    entity = "https://bench-sp.example.test/metadata"
    config = SPConfig()
    config.load(
        {
            "entityid": entity,
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "key_file": str(tmp / "sp-key.pem"),
            "cert_file": str(tmp / "sp-cert.pem"),
            "encryption_keypairs": [
                {"key_file": str(tmp / "sp-key.pem"), "cert_file": str(tmp / "sp-cert.pem")}
            ],
            "metadata": {"inline": [idp_metadata]},
            "attribute_map_dir": str(
                Path(__file__).resolve().parents[1] / "portail/federation/idp/attributemaps"
            ),
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [
                            (
                                "https://bench-sp.example.test/acs",
                                "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                            )
                        ]
                    },
                    "want_response_signed": True,
                    "want_assertions_signed": True,
                }
            },
        }
    )
    ServiceProvider.objects.filter(entity_id=entity).delete()
    ServiceProvider.objects.create(
        entity_id=entity,
        name="Bench",
        short_label="BE",
        metadata_xml=str(entity_descriptor(config)),
        encrypt_assertions=args.encrypt,
    )
    sp = Saml2Client(config=config)
    idp = next(iter(sp.metadata.identity_providers()))

    portal_cpu = []

    def _children():
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def one_login():
        request_id, info = sp.prepare_for_authenticate(entityid=idp, binding=BINDING_HTTP_REDIRECT)
        location = urlsplit(dict(info["headers"])["Location"])
        started, cpu0, child0 = time.perf_counter(), time.process_time(), _children()
        answer = browser.get(f"{location.path}?{location.query}")
        page = browser.get(answer["Location"]).content.decode()
        portal = time.perf_counter() - started
        portal_cpu.append(time.process_time() - cpu0 + _children() - child0)
        value = unescape(re.search(r'name="SAMLResponse" value="([^"]+)"', page).group(1))
        started = time.perf_counter()
        sp.parse_authn_request_response(
            value, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", outstanding={request_id: "/"}
        )
        return portal, time.perf_counter() - started

    for _ in range(min(5, args.n)):
        one_login()  # warm-up
    portal_times, sp_times = [], []
    portal_cpu.clear()
    cpu = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(args.n):
        portal, checked = one_login()
        portal_times.append(portal)
        sp_times.append(checked)
    cpu = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    portal_times.sort()
    median = portal_times[len(portal_times) // 2] * 1000
    p95 = portal_times[int(len(portal_times) * 0.95) - 1] * 1000
    print(
        f"Portail SAML IdP bench — {args.n} SP-initiated logins"
        f"{' (encrypted assertions)' if args.encrypt else ''}, one process"
    )
    print(
        f"  portal (2 requests): median {median:.1f} ms, p95 {p95:.1f} ms, "
        f"{1000 / median:.1f} logins/s one after the other"
    )
    print(f"  SP validation: median {sorted(sp_times)[len(sp_times) // 2] * 1000:.1f} ms")
    print(
        f"  CPU of this process (portal + SP, without the xmlsec1 children): {cpu / args.n * 1000:.1f} ms/login"
    )
    started = time.perf_counter()
    for _ in range(50):
        browser.get("/saml/metadata")
    print(
        f"  CPU of the xmlsec1 children (portal and SP signing, checking): "
        f"{child_cpu / args.n * 1000:.1f} ms/login"
    )
    per_login = sum(portal_cpu) / len(portal_cpu)
    print(
        f"  portal CPU (Django + its xmlsec1 children): {per_login * 1000:.1f} ms/login, "
        f"{1 / per_login:.0f} logins/s per core"
    )
    print(f"  GET /saml/metadata: {(time.perf_counter() - started) / 50 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
