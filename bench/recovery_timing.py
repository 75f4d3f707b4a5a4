"""Does the neutral mode's lost-password answer take the same time whatever the account?

    PYTHONPATH=. python bench/recovery_timing.py [-n 1000]
    (DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/portail_bench_recovery, its own,
    dropped and recreated at each run)

Issue 7 §3: "in the neutral mode the recovery answers are sent before any account-dependent work
(mail queued, not delivered, inside the request), and timing does not tell the cases apart
(≥ 1,000 samples per case, difference of medians under 1 ms)".

Through the real server: `python -m portail serve --workers 1` (gunicorn) on PostgreSQL and Redis
(REDIS_URL, default redis://127.0.0.1:6379/6, emptied at each run), with
PORTAIL_NEUTRAL_RECOVERY_MESSAGES=1 and EMAIL_URL pointing at an aiosmtpd server started here.
Each case gets its own accounts (one measured request per account, so that no case reuses a warm
row or the one-mail-per-cadence slot); the "active, again" accounts were asked once during the
warm-up, so their measured request comes inside the cadence (no mail leaves). Requests of all
cases are interleaved at random, so that each case is spread evenly over the run.
Each request carries its own X-Forwarded-For (PORTAIL_BEHIND_PROXY=1) so the per-address budget
(recovery:address, 20 per 15 min) never asks the benchmark itself for the proof-of-work challenge.

Prints, per case, the median and quartiles of the wall time of a POST (connection, request,
answer read), the difference of each median with the unknown case, and as the reference measured
in the same run the median of a GET of the same page. Asserts nothing.
"""

import argparse
import http.client
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402

ROOT = s.ROOT
s.in_process_settings(
    "portail_bench_recovery",
    # Redis as in production (database 6: this benchmark's own, emptied at each run).
    REDIS_URL="redis://127.0.0.1:6379/6",
    EMAIL_URL="smtp://127.0.0.1:25",  # replaced by the aiosmtpd below
    PORTAIL_LOG_LEVEL="ERROR",
)

PAGE = "/auth/lost-password"
CASES = ["unknown", "pending", "blocked", "active", "active, again"]


def setup_accounts(n: int) -> dict[str, list[str]]:
    import django

    django.setup()
    from django.core.management import call_command

    from portail.accounts.identifiers import fold_email
    from portail.accounts.models import Profile, State, User

    call_command("migrate", verbosity=0)
    rows, identifiers = [], {case: [] for case in CASES}
    kinds = [
        ("pending", State.PENDING),
        ("blocked", State.BLOCKED),
        ("active", State.ACTIVE),
        ("active, again", State.ACTIVE),
    ]
    for case, state in kinds:
        for i in range(n):
            identifier = f"bench.{case.replace(', ', '')}{i}"
            email = f"{identifier}@example.org"
            rows.append(
                User(
                    identifier=identifier,
                    first_name="Bench",
                    last_name=case,
                    profile=Profile.ELEVE,
                    state=state,
                    email=email,
                    email_folded=fold_email(email),  # bulk_create skips User.save()
                    password="!unusable",
                )
            )
            identifiers[case].append(identifier)
    # Some bulk around them, so that lookups are index lookups in a table of realistic shape.
    for i in range(20_000):
        email = f"autre{i}@example.org"
        rows.append(
            User(
                identifier=f"autre.compte{i}",
                first_name="Autre",
                last_name="Compte",
                profile=Profile.ELEVE,
                state=State.ACTIVE,
                email=email,
                email_folded=fold_email(email),
                password="!unusable",
            )
        )
    User.objects.bulk_create(rows, batch_size=2000)
    identifiers["unknown"] = [f"bench.inconnu{i}" for i in range(n)]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_user")
    connection.close()
    return identifiers


def start_smtp():
    from aiosmtpd.controller import Controller

    class Sink:
        count = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook)
            Sink.count += 1
            return "250 OK"

    port = s.free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    controller.sink = Sink
    return controller, port


def start_server(smtp_port: int) -> s.PortailServer:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}",
        PORTAIL_NEUTRAL_RECOVERY_MESSAGES="1",
        # "active, again" must stay inside the cadence however long the run takes.
        PORTAIL_RECOVERY_MAIL_MINUTES="60",
        PORTAIL_BEHIND_PROXY="1",
        PORTAIL_SSL_REDIRECT="0",
        PORTAIL_ALLOWED_HOSTS="127.0.0.1",
        # Its own writable state (collected static files, OIDC key), not the checkout's var/.
        PORTAIL_VAR_DIR=os.environ.get("PORTAIL_VAR_DIR", str(ROOT / "var" / "bench_recovery")),
    )
    log = Path(env["PORTAIL_VAR_DIR"]) / "serve.log"
    return s.PortailServer(env, log, workers=1).start()


class Browser:
    """One CSRF cookie and form token, reused for every POST (as a script would)."""

    def __init__(self, port: int):
        self.port = port
        status, headers, body = self.request("GET", PAGE)
        cookie = re.search(r"csrftoken=([^;]+)", headers.get("set-cookie", ""))
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
        assert status == 200 and cookie and token, (status, headers)
        self.cookie, self.token = cookie.group(1), token.group(1)
        self.n = 0

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        text = response.read().decode()
        conn.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text

    def ask(self, identifier: str) -> tuple[float, int]:
        self.n += 1
        forwarded = f"10.{self.n // 65536 % 256}.{self.n // 256 % 256}.{self.n % 256}"
        body = urlencode({"csrfmiddlewaretoken": self.token, "identifier": identifier})
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={self.cookie}",
            "X-Forwarded-For": forwarded,
        }
        start = time.perf_counter()
        status, _h, _b = self.request("POST", PAGE, body, headers)
        return time.perf_counter() - start, status

    def page(self) -> float:
        start = time.perf_counter()
        self.request("GET", PAGE)
        return time.perf_counter() - start


def summary(samples: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(samples, n=4)
    return q1 * 1000, median * 1000, q3 * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="samples per case (default 1000)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600,
        help="stop measuring after this long, whatever n (default 600; the house asks < 2 min "
        "per benchmark on the shared machine: 1,000 samples per case need ~75 s when idle)",
    )
    args = parser.parse_args()

    s.recreate_database(os.environ["DATABASE_URL"])
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    identifiers = setup_accounts(args.n)
    smtp, smtp_port = start_smtp()
    server = start_server(smtp_port)
    try:
        browser = Browser(server.port)
        # Warm-up (imports, connections, caches), which also takes the cadence's slot of the
        # "active, again" accounts: their measured request comes inside the cadence.
        for i in range(200):
            browser.ask(f"echauffement{i}")
            browser.page()
        for identifier in identifiers["active, again"]:
            browser.ask(identifier)
        # Every case spread evenly over the run (the machine's load drifts).
        plan = [(case, i) for case in CASES for i in range(args.n)]
        random.seed(7)
        random.shuffle(plan)
        timings = {case: [] for case in CASES}
        reference = []
        statuses = set()
        started = time.time()
        for step, (case, i) in enumerate(plan):
            if time.time() - started > args.max_seconds:
                print(f"stopped after {args.max_seconds:.0f} s, at step {step} of {len(plan)}")
                break
            elapsed, status = browser.ask(identifiers[case][i])
            timings[case].append(elapsed)
            statuses.add(status)
            if step % 5 == 0:
                reference.append(browser.page())
        wall = time.time() - started
    finally:
        server.stop()
        smtp.stop()

    import django
    from django.db import connection

    from portail.mail.models import OutgoingMail

    queued = OutgoingMail.objects.filter(status=OutgoingMail.Status.PENDING).count()
    connection.close()

    load = os.getloadavg()
    print(
        f"recovery timing, neutral mode, portail serve --workers 1, PostgreSQL (Django {django.get_version()})"
    )
    print(
        f"{sum(len(t) for t in timings.values())} POSTs in {wall:.0f} s; statuses {sorted(statuses)}"
    )
    print(
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (shared machine: figures are noisy)"
    )
    print(
        f"mails queued, not delivered in the request: {queued}; "
        f"received by the SMTP server meanwhile: {smtp.sink.count}"
    )
    q1, ref, q3 = summary(reference)
    print(
        f"\nreference, GET {PAGE} (same run): median {ref:.2f} ms (q1 {q1:.2f}, q3 {q3:.2f}), n={len(reference)}"
    )
    print(f"\n{'case':<16}{'n':>6}{'q1 ms':>9}{'median':>9}{'q3 ms':>9}{'Δ median vs unknown':>22}")
    base = summary(timings["unknown"])[1]
    worst = 0.0
    for case in CASES:
        q1, median, q3 = summary(timings[case])
        worst = max(worst, abs(median - base))
        print(
            f"{case:<16}{len(timings[case]):>6}{q1:>9.2f}{median:>9.2f}{q3:>9.2f}{median - base:>+20.2f} ms"
        )
    print(
        f"\nlargest difference of medians: {worst:.2f} ms (goal < 1 ms); "
        f"{worst / ref:.2f} × the GET reference median"
    )


if __name__ == "__main__":
    main()
