"""A normal login's latency, quiet and during an anonymous flood of worst-case strength requests.

    PYTHONPATH=. python bench/strength_flood.py [--logins 30] [--flood 8] [--workers 2]

Starts a real `portail serve --workers 2` (gunicorn) on 127.0.0.1 with its own SQLite database
in a temporary directory (or DATABASE_URL if set), creates one active account, then:

1. quiet: N sequential logins (GET the form, then the timed POST /auth/login);
2. flood: `--flood` threads each keep one POST /auth/password-strength in flight, a 72-character
   l33t string (zxcvbn's slowest input), each from another X-Forwarded-For address (a
   distributed flood: the per-address limit does not save the server); meanwhile the same N
   logins, timed the same way;
3. floor: the same number of GET /healthz in flight (the cheapest request there is) and the
   same N logins: what any `--flood` requests in flight cost a login on these workers, whatever
   they ask.

Prints median and p90 of both, their ratio (issue 7 §3 goal: within 1.5×), the flood's answers
(200 analysed, 429 refused) and, in-process, zxcvbn's cost on 72 and on the analysed
characters next to one Argon2id verification, as references measured in the same run.
Asserts nothing: the machine is shared and figures vary with its load.
"""

import argparse
import contextlib
import http.client
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402

ROOT = s.ROOT
PASSWORD = "cheval orange batterie agrafe"
IDENTIFIER = "bench.flood"
L33T = "4@3$1!0|7+(<[{%2568"


def worst_case(rng):
    return "".join(rng.choice(L33T) for _ in range(72))


class Browser:
    """One cookie jar over http.client (light: the client shares the server's two cores)."""

    def __init__(self, port, address):
        self.port, self.address, self.cookies = port, address, {}

    def request(self, method, path, form=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {
            "X-Forwarded-For": self.address,
            "X-Forwarded-Proto": "http",
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
        }
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}/auth/login"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        conn.close()
        return response.status, data

    def csrf(self):
        status, page = self.request("GET", "/auth/login")
        assert status == 200, status
        return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()


def timed_login(port):
    browser = Browser(port, "203.0.113.7")
    token = browser.csrf()
    started = time.perf_counter()
    status, _ = browser.request(
        "POST",
        "/auth/login",
        {"csrfmiddlewaretoken": token, "identifier": IDENTIFIER, "password": PASSWORD},
    )
    elapsed = time.perf_counter() - started
    assert status == 302, f"login answered {status}"
    return elapsed


def logins(port, n):
    return [timed_login(port) for _ in range(n)]


def flood(port, stop, answers, seed, kind):
    rng = random.Random(seed)
    browser = Browser(port, "198.51.100.1")
    token = browser.csrf()
    while not stop.is_set():
        browser.address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if kind == "strength":
            status, _ = browser.request(
                "POST",
                "/auth/password-strength",
                {"csrfmiddlewaretoken": token, "password": worst_case(rng)},
            )
        else:  # the floor: as many of the cheapest requests in flight
            status, _ = browser.request("GET", "/healthz")
        answers.append(status)


def logins_during(port, kind, n, in_flight):
    stop, answers = threading.Event(), []
    threads = [
        threading.Thread(target=flood, args=(port, stop, answers, k, kind), daemon=True)
        for k in range(in_flight)
    ]
    for thread in threads:
        thread.start()
    time.sleep(2)  # the flood is in full swing before the first timed login
    started = time.monotonic()
    during = logins(port, n)
    seconds = time.monotonic() - started + 2
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return during, answers, seconds


def in_process_references():
    """zxcvbn on 72 and on the analysed characters, next to one Argon2id verification."""
    from argon2 import PasswordHasher
    from zxcvbn import zxcvbn

    from portail.accounts.passwords import ZXCVBN_ANALYSED

    rng = random.Random(7)
    samples = [worst_case(rng) for _ in range(5)]

    def median_ms(fn, items):
        times = []
        for item in items:
            started = time.perf_counter()
            fn(item)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
    stored = hasher.hash(PASSWORD)

    def verify(password):
        with contextlib.suppress(Exception):  # a wrong password is the case measured
            hasher.verify(stored, password)

    return {
        "zxcvbn, 72 characters": median_ms(zxcvbn, samples),
        f"zxcvbn, first {ZXCVBN_ANALYSED}": median_ms(
            zxcvbn, [sample[:ZXCVBN_ANALYSED] for sample in samples]
        ),
        "Argon2id verification": median_ms(verify, samples),
    }


def summary(times):
    ordered = sorted(times)
    return statistics.median(ordered) * 1000, ordered[int(0.9 * (len(ordered) - 1))] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logins", type=int, default=30)
    parser.add_argument("--flood", type=int, default=8, help="strength requests in flight")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp(prefix="portail-bench-strength-"))
    port = s.free_port()
    env = s.portail_env(
        var,
        # Its own SQLite database in `var`, unless DATABASE_URL (and REDIS_URL) are set.
        DATABASE_URL=os.environ.get("DATABASE_URL"),
        REDIS_URL=os.environ.get("REDIS_URL"),
        PORTAIL_BASE_URL=f"http://127.0.0.1:{port}",
        PORTAIL_ALLOWED_HOSTS="127.0.0.1",
        PORTAIL_BEHIND_PROXY="1",
        PORTAIL_LOG_LEVEL="ERROR",
    )
    s.manage(env, "migrate", "--noinput")
    s.create_user(env, IDENTIFIER, PASSWORD, "Bench", "Flood")
    with s.PortailServer(env, var / "serve.log", workers=args.workers, port=port):
        logins(port, 3)  # warm-up: imports, first connections, zxcvbn's lists
        quiet = logins(port, args.logins)

        during, answers, flood_seconds = logins_during(port, "strength", args.logins, args.flood)
        floor, floor_answers, _ = logins_during(port, "healthz", args.logins, args.flood)

    quiet_median, quiet_p90 = summary(quiet)
    flood_median, flood_p90 = summary(during)
    load = os.getloadavg()[0]
    print(f"portail serve --workers {args.workers}, {args.flood} strength requests in flight")
    print(f"load average {load:.1f} (machine shared: compare the ratios, not the figures)")
    print(f"login, quiet         median {quiet_median:7.1f} ms   p90 {quiet_p90:7.1f} ms")
    print(f"login, during flood  median {flood_median:7.1f} ms   p90 {flood_p90:7.1f} ms")
    floor_median, floor_p90 = summary(floor)
    print(f"login, /healthz flood median {floor_median:6.1f} ms   p90 {floor_p90:7.1f} ms")
    print(
        f"ratio flood/quiet    median {flood_median / quiet_median:7.2f}     "
        f"p90 {flood_p90 / quiet_p90:7.2f}      (goal: within 1.5)"
    )
    print(
        f"ratio floor/quiet    median {floor_median / quiet_median:7.2f}     "
        f"p90 {floor_p90 / quiet_p90:7.2f}      (the same number of the cheapest requests)"
    )
    counts = {status: answers.count(status) for status in sorted(set(answers))}
    rate = len(answers) / flood_seconds
    print(f"strength flood answers {counts}, about {rate:.0f} requests/s")
    print(f"/healthz flood: {len(floor_answers)} answers")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portail.settings")
    for name, ms in in_process_references().items():
        print(f"in process: {name:26s} {ms:7.1f} ms (median)")


if __name__ == "__main__":
    main()
