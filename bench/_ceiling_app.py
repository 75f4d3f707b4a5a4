"""The serving stack's own ceiling for bench/stack_ceiling.py: Portail's server, no Django.

`portail serve`'s parts (gunicorn, PortailUvicornWorker: uvloop + llhttp, the WsgiBridge's pool of
threads) in front of the smallest login a server can do: GET /auth/login answers a form with a
CSRF cookie and token (fixed), POST /auth/login reads the form, runs CEILING_QUERIES PostgreSQL
round trips (0 by default; on a per-thread psycopg connection to DATABASE_URL, the bench
database), verifies the password with Argon2id at the portal's parameters (PORTAIL_ARGON2_*) and
answers 302 to /.
No sessions, no CSRF check, no audit, no middleware: what is left of a login's cost once every
part of Portail above the server is taken away. Never served outside this benchmark.
"""

import contextlib
import os
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402 (puts the project's root on sys.path too)

from portail.ops.bridge import WsgiBridge  # noqa: E402

HASHER = s.argon2_hasher()
ENCODED = HASHER.hash(s.PASSWORD)
QUERIES = int(os.environ.get("CEILING_QUERIES", "0"))
FORM = (
    b'<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="ceiling">'
    b'<input name="identifier"><input name="password" type="password"></form>'
)
local = threading.local()
# CEILING_SLOTS=N: at most N Argon2id computations at once on the node, whichever process runs
# them (a semaphore made before gunicorn forks: bench/stack_ceiling.py preloads this module).
SLOTS = int(os.environ.get("CEILING_SLOTS", "0"))
if SLOTS:
    import multiprocessing

    node_slots = multiprocessing.get_context("fork").Semaphore(SLOTS)
else:
    node_slots = contextlib.nullcontext()


def connection():
    if not hasattr(local, "connection"):
        import psycopg

        local.connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return local.connection


def login(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Set-Cookie", "csrftoken=ceiling; Path=/"),
            ],
        )
        return [FORM]
    form = parse_qs(environ["wsgi.input"].read().decode())
    for _ in range(QUERIES):
        connection().execute("SELECT %s::text", [form["identifier"][0]]).fetchone()
    try:
        with node_slots:
            HASHER.verify(ENCODED, form["password"][0])
    except Exception:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wrong"]
    start_response("302 Found", [("Location", "/"), ("Content-Length", "0")])
    return [b""]


application = WsgiBridge(login, threads=int(os.environ.get("CEILING_THREADS", "2")))
