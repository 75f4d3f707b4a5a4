"""« Mon compte »'s sessions: what the index costs at login, on the page and to end the others.

    python bench/account_sessions.py [--sessions 1,10,50] [--rounds 20]

Runs Django in this process against a throwaway database: SQLite by default, or the PostgreSQL
database named by DATABASE_URL (use your own: it is created and dropped as a test database), with
the tests' settings. For each number of open sessions of one account it prints the SQL queries and
the median time of: a login (password form, Argon2id included), the /compte/ page, and « Se
déconnecter de tous les autres appareils ». Nothing asserts; query counts are exact, times depend
on the machine's load (printed).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import (  # noqa: E402
    CaptureQueriesContext,
    setup_test_environment,
)

PASSWORD = "cheval orange batterie agrafe"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


def measure(call, rounds):
    times, queries = [], 0
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        queries = len(captured)
    return statistics.median(times) * 1000, queries


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", default="1,10,50")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        run(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args):
    from django.contrib.auth.signals import user_logged_in

    from portail.accounts.models import Profile, State, User
    from portail.profile import signals

    print(f"database: {connection.vendor}; load average: {os.getloadavg()[0]:.1f}")
    _account(User, Profile, State)
    warm = Client(HTTP_USER_AGENT=UA)
    for _ in range(3):  # warm-up: templates, Argon2, first connections
        warm.post("/auth/login", {"identifier": "bench.parent", "password": PASSWORD})
    rows = {}
    for label, connected in (("without", False), ("with", True)):
        if not connected:
            user_logged_in.disconnect(dispatch_uid="portail.profile.index_session")
        times, queries = [], 0
        for _ in range(args.rounds):
            client = Client(HTTP_USER_AGENT=UA)
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                client.post("/auth/login", {"identifier": "bench.parent", "password": PASSWORD})
                times.append(time.perf_counter() - start)
            queries = len(captured)
        rows[label] = (statistics.median(times) * 1000, queries)
        if not connected:
            user_logged_in.connect(signals._logged_in, dispatch_uid="portail.profile.index_session")
    for label, (ms, queries) in rows.items():
        print(
            f"login from a new browser {label} the index and the notice: {ms:.1f} ms, {queries} queries"
        )
    print("open sessions | login ms (queries) | /compte/ ms (queries) | end others ms (queries)")
    for count in [int(n) for n in args.sessions.split(",")]:
        _account(User, Profile, State)
        for _ in range(count - 1):
            Client(HTTP_USER_AGENT=UA).post(
                "/auth/login", {"identifier": "bench.parent", "password": PASSWORD}
            )
        me = Client(HTTP_USER_AGENT=UA)

        def login(me=me):
            me.post("/auth/login", {"identifier": "bench.parent", "password": PASSWORD})

        login_ms, login_q = measure(login, 1)  # the index has `count` rows, this makes one more
        page_ms, page_q = measure(lambda me=me: me.get("/compte/"), args.rounds)
        end_ms, end_q = measure(lambda me=me: me.post("/compte/sessions/fermer-les-autres"), 1)
        print(
            f"{count:>13} | {login_ms:8.1f} ({login_q:>2}) | {page_ms:10.1f} ({page_q:>2})"
            f" | {end_ms:10.1f} ({end_q:>2})"
        )


def _account(User, Profile, State):  # noqa: N803 (the model classes)
    User.objects.filter(identifier="bench.parent").delete()
    User.objects.create_user(
        "bench.parent",
        PASSWORD,
        first_name="Bench",
        last_name="Parent",
        profile=Profile.PARENT,
        state=State.ACTIVE,
        email="bench.parent@example.org",
    )


if __name__ == "__main__":
    main()
