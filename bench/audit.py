"""Audit log benchmark: the console's journal pages over tens of millions of events (PostgreSQL).

    python bench/audit.py [--events 50000000] [--accounts N] [--loads 15] [--keep-db]

DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/portail_bench_audit (dropped, created
and migrated unless --keep-db). The fill (SQL generate_series, indexes built after the rows)
spreads the events over the last 12 months' partitions in the order of time, as a log grows (ids
follow dates, each partition is written in date order), and over --accounts accounts (default
one per 100 events, at least 20,000), 500 accounts per structure. Then the pages are loaded
through Django's test client (the whole view: scoping, query, template) by a regional
administrator, by the référent of one school (500 accounts) and by the référent of ten (5,000
accounts: a large lycée with its parents): first page, the next page by its cursor, a page 340
days back, filters by action, account and dates, and an account's page with its trail. Prints
p50/p95 per page and, as the reference measured in the same run, the console's search page for
a name that matches nobody. Goal (issue 8 §5): every page under 200 ms with 50 million events.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402

TAGS = [
    ("account.login", 70),
    ("account.login.failed", 12),
    ("account.logout", 10),
    ("account.activated", 2),
    ("account.password.reset_requested", 2),
    ("sso.cas.ticket", 3),
    ("console.account.blocked", 1),
]


def fill(events: int, accounts: int | None = None) -> dict:
    import datetime

    from django.core.management import call_command
    from django.db import connection

    from portail.audit import partitions

    call_command("migrate", verbosity=0)
    accounts = accounts or max(20_000, events // 100)
    structures = max(2, accounts // 500)
    started = time.monotonic()
    with connection.cursor() as c:
        c.execute(
            "INSERT INTO directory_structure (uai, name, kind, external_id) "
            "SELECT lpad(g::text, 7, '0') || 'B', 'Lycée ' || g, 'lycee', NULL "
            "FROM generate_series(1, %s) g",
            [structures],
        )
        c.execute(
            """SELECT column_name, data_type FROM information_schema.columns
               WHERE table_name = 'accounts_user' AND is_nullable = 'NO' AND column_name <> 'id'"""
        )
        values = {
            "identifier": "'bench.' || g",
            "first_name": "'Élève'",
            "last_name": "'N' || g",
            "profile": "'eleve'",
            "state": "'active'",
        }
        by_type = {"boolean": "false", "timestamp with time zone": "now()"}
        cols, exprs = [], []
        for name, kind in c.fetchall():
            cols.append(f'"{name}"')
            exprs.append(values.get(name, by_type.get(kind, "''")))
        c.execute(
            f"INSERT INTO accounts_user ({', '.join(cols)}) "  # noqa: S608 (bench, constant SQL)
            f"SELECT {', '.join(exprs)} FROM generate_series(1, %s) g",
            [accounts],
        )
        c.execute("SELECT min(id) FROM accounts_user")
        first_user = c.fetchone()[0]
        c.execute("SELECT min(id) FROM directory_structure")
        first_structure = c.fetchone()[0]
        c.execute(
            "INSERT INTO accounts_user_structures (user_id, structure_id) "
            "SELECT id, %s + (id - %s) %% %s FROM accounts_user",
            [first_structure, first_user, structures],
        )
        today = datetime.datetime.now(datetime.UTC).date()
        partitions.ensure_months(c, today - datetime.timedelta(days=366), today)
        # Rows first, indexes after: the migrations' own secondary indexes (read from the
        # catalogue, so the bench measures what production has), dropped and built once.
        c.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_event' "
            "AND indexname <> 'audit_event_pkey' ORDER BY indexname"
        )
        indexes = c.fetchall()
        for index, _ in indexes:
            c.execute(f'DROP INDEX "{index}"')
        tag_sql = (
            "CASE "
            + " ".join(
                f"WHEN r < {sum(w for _, w in TAGS[: i + 1])} THEN '{tag}'"
                for i, (tag, _) in enumerate(TAGS)
            )
            + " END"
        )
        chunk = 1_000_000
        for low in range(0, events, chunk):
            high = min(events, low + chunk)
            c.execute(
                f"""INSERT INTO audit_event (tag, at, subject, ip, user_agent, data, target_id)
                SELECT {tag_sql},
                       now() - interval '365 days' * (1 - g::float8 / %s)
                             - random() * interval '1 second', '',
                       ('10.' || (g %% 250) || '.' || (g %% 199) || '.' || (g %% 97))::inet,
                       'Mozilla/5.0 (bench)', '{{}}'::jsonb,
                       %s + ((g::bigint * 2654435761) %% %s)
                FROM (SELECT g, floor(random() * 100)::int AS r
                      FROM generate_series(%s, %s) g) s""",  # noqa: S608 (bench, constant SQL)
                [events, first_user, accounts, low + 1, high],
            )
            print(f"  {high:,} events ({time.monotonic() - started:.0f} s)", flush=True)
        c.execute("SET maintenance_work_mem = '256MB'")
        for index, definition in indexes:
            # The catalogue says "ON ONLY audit_event" (the parent's entry alone): built on the
            # parent instead, every partition gets its own index.
            c.execute(definition.replace(" ON ONLY ", " ON ", 1))
            print(f"  index {index} ({time.monotonic() - started:.0f} s)", flush=True)
        # What autovacuum does to an insert-only table (PostgreSQL 13+): statistics, and the
        # visibility map that lets index-only scans skip the rows.
        c.execute("VACUUM (ANALYZE) audit_event")
        c.execute("ANALYZE")
    return {
        "seconds": time.monotonic() - started,
        "accounts": accounts,
        "structures": structures,
        "first_user": first_user,
    }


def console_client(user):
    from django.test import Client

    from portail.console.views import SESSION_VERIFIED

    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_VERIFIED] = user.pk
    session.save()
    return client


def timed(client, url, loads):
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, db_times, body = [], [], ""
    for _ in range(loads):
        with CaptureQueriesContext(connection) as queries:
            t = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t) * 1000)
        db_times.append(sum(float(q["time"]) for q in queries.captured_queries) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        body = response.content.decode()
    times.sort()
    older = re.search(r'href="\?([^"]*avant=[^"]*)">Événements plus anciens', body)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    link = older and older[1].replace("&amp;", "&")
    return statistics.median(times), p95, statistics.median(db_times), link


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000_000)
    parser.add_argument("--loads", type=int, default=15)
    parser.add_argument(
        "--accounts", type=int, default=None, help="default: one per 100 events, at least 20,000"
    )
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    url = s.in_process_settings(
        "portail_bench_audit",
        PORTAIL_BASE_URL="http://testserver",
        PORTAIL_ALLOWED_HOSTS="testserver",
    )
    if not args.keep_db:
        s.recreate_database(url)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    # Pages render without collectstatic: plain static URLs.
    settings.STORAGES["staticfiles"] = {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
    }

    from portail.accounts.models import Profile, State, User
    from portail.console import otp
    from portail.console.models import TOTPDevice
    from portail.directory.models import Function, Structure

    if args.keep_db:
        info = {"seconds": 0.0}
        print("Reusing the filled database (--keep-db).")
    else:
        print(f"Filling {args.events:,} events over 12 months ...", flush=True)
        info = fill(args.events, args.accounts)
        print(
            f"Fill: {args.events:,} events, {info['accounts']:,} accounts, "
            f"{info['structures']:,} structures in {info['seconds']:.0f} s "
            f"({args.events / max(info['seconds'], 0.001):,.0f} events/s, indexes included)"
        )

    school = Structure.objects.order_by("pk").first()
    # A large lycée with its parents has ~5,000 accounts: the référent of ten 500-account
    # structures reads as many events (~40,000 a month) as its référent would.
    large = list(Structure.objects.order_by("pk")[:10])
    people = {}
    for identifier, role, structures in (
        ("bench.region", Function.Role.REGIONAL_ADMIN, [None]),
        ("bench.referent", Function.Role.REFERENT, [school]),
        ("bench.referent10", Function.Role.REFERENT, large),
    ):
        user = User.objects.filter(identifier=identifier).first()
        if user is None:
            user = User.objects.create_user(
                identifier,
                None,
                first_name="Bench",
                last_name=role,
                profile=Profile.PERSONNEL,
                state=State.ACTIVE,
            )
            for structure in structures:
                Function.objects.create(user=user, role=role, structure=structure)
            TOTPDevice.objects.create(
                user=user,
                encrypted_secret=otp.encrypt("JBSWY3DPEHPK3PXP"),
                confirmed_at=timezone.now(),
            )
        people[identifier] = user
    pupil = User.objects.filter(structures=school, identifier__startswith="bench.").order_by("pk")[
        5
    ]
    since = (timezone.now() - timezone.timedelta(days=100)).date()
    until = since + timezone.timedelta(days=6)

    print(f"\nPage loads through the Django test client, {args.loads} each (p50 / p95 ms):")
    rows = []
    back = (timezone.now() - timezone.timedelta(days=340)).isoformat()
    for who, user in (
        ("région", people["bench.region"]),
        ("référent", people["bench.referent"]),
        ("5 000 cpt", people["bench.referent10"]),
    ):
        client = console_client(user)
        ref = timed(client, "/console/?q=personne-de-ce-nom", args.loads)
        rows.append((who, "reference: search that matches nobody", *ref[:3]))
        pages = [
            ("journal, first page", "/console/journal"),
            ("journal, action = échec de connexion", "/console/journal?tag=account.login.failed"),
            (
                "journal, rare action (compte bloqué)",
                "/console/journal?tag=console.account.blocked",
            ),
            ("journal, one account", f"/console/journal?account={pupil.identifier}"),
            ("journal, one week 100 days ago", f"/console/journal?since={since}&until={until}"),
            (
                "journal, rare action in that week",
                f"/console/journal?tag=console.account.blocked&since={since}&until={until}",
            ),
            ("journal, 340 days back (cursor)", f"/console/journal?avant={quote(back)}~1"),
            ("account page with its trail", f"/console/comptes/{pupil.pk}/"),
        ]
        for name, page in pages:
            p50, p95, db, older = timed(client, page, args.loads)
            rows.append((who, name, p50, p95, db))
            if name == "journal, first page" and older:
                p50, p95, db, _ = timed(client, "/console/journal?" + older, args.loads)
                rows.append((who, "journal, next page (cursor)", p50, p95, db))
    print(f"  {'':9} {'page':42} {'p50':>8} {'p95':>8} {'SQL p50':>8} {'p50/ref':>8}")
    reference = {who: p50 for who, name, p50, _, _ in rows if name.startswith("reference")}
    for who, name, p50, p95, db in rows:
        print(f"  {who:9} {name:42} {p50:8.1f} {p95:8.1f} {db:8.1f} {p50 / reference[who]:8.2f}")
    with connection.cursor() as c:
        c.execute(
            "SELECT sum(c.reltuples)::bigint FROM pg_inherits i JOIN pg_class c "
            "ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_event'::regclass"
        )
        events = c.fetchone()[0]
    pages = [r for r in rows if not r[1].startswith("reference")]
    print(
        f"\nAbout {events:,} events. Journal pages: worst p50 {max(r[2] for r in pages):.0f} ms, "
        f"worst p95 {max(r[3] for r in pages):.0f} ms, worst SQL p50 "
        f"{max(r[4] for r in pages):.0f} ms (goal: < 200 ms at 50M events). "
        "Figures from a shared, loaded machine: compare with the reference page of the same run."
    )


if __name__ == "__main__":
    main()
