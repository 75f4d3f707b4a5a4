"""Mail queue drain rate to a local relay, with 1 and 2 workers, against PostgreSQL.

    python bench/mail.py [-n 2000] [--batch 50]   (DATABASE_URL defaults to …/portail_bench_mail)

Queues N mails (the real send_template: rendered, sealed), starts an aiosmtpd relay on loopback
that counts every Message-ID it accepts, then runs `portail send-mail` (one pass, which drains
everything due) as 1 process, then as 2 processes at once on a fresh queue. Prints mails/s,
duplicates (a Message-ID received twice; must be 0) and missing mails; and, as the reference of
the same run, the same relay fed by plain smtplib over one connection (no database at all).
Asserts nothing but the counts (figures vary with the machine and its load).
"""

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from email import message_from_bytes
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402

s.in_process_settings("portail_bench_mail", PORTAIL_LOG_LEVEL="ERROR")


class Relay:
    """aiosmtpd on 127.0.0.1: accepts everything, counts Message-IDs."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.ids = Counter()
        self.first = self.last = 0.0
        self.lock = threading.Lock()
        self.port = s.free_port()  # aiosmtpd cannot be given port 0
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook)
        message_id = message_from_bytes(envelope.content).get("Message-ID", "")
        now = time.perf_counter()
        with self.lock:
            self.ids[message_id] += 1
            self.first = self.first or now
            self.last = now
        return "250 OK"

    def start(self):
        self.controller.start()

    def received(self):
        with self.lock:
            return sum(self.ids.values())

    def reset(self):
        with self.lock:
            self.ids.clear()
            self.first = self.last = 0.0


def fill_queue(n):
    from django.db import transaction

    from portail.mail.models import OutgoingMail
    from portail.mail.services import send_template

    OutgoingMail.objects.all().delete()
    with transaction.atomic():
        for i in range(n):
            send_template(
                "password_reset",
                f"eleve{i}@example.org",
                {
                    "first_name": f"Élève {i}",
                    "identifier": f"eleve.{i}",
                    "link": f"https://ent.example.test/auth/reset/token-{i}",
                    "minutes": 60,
                },
                deliver_now=False,
            )


def run_workers(count, env, n, relay):
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            s.portail_command("send-mail"),
            env=env,
            cwd=s.ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=110)
        if proc.returncode:
            print(err.decode()[-2000:])
    elapsed = time.perf_counter() - started
    return elapsed


def reference(relay, n):
    """Plain smtplib, one connection, the same size of message: the relay's own pace."""
    import smtplib
    from email.message import EmailMessage

    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=5) as smtp:
        for i in range(n):
            msg = EmailMessage()
            msg["From"] = "ne-pas-repondre@ent.local"
            msg["To"] = f"eleve{i}@example.org"
            msg["Subject"] = "Réinitialisation de votre mot de passe"
            msg["Message-ID"] = f"<ref-{i}@ent.local>"
            msg.set_content("Bonjour,\n" + "x" * 900)
            smtp.send_message(msg)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    s.ensure_database(os.environ["DATABASE_URL"])
    relay = Relay()
    relay.start()
    os.environ["EMAIL_URL"] = f"smtp://127.0.0.1:{relay.port}"
    import django

    django.setup()
    from django.core.management import call_command

    from portail.mail.models import OutgoingMail

    call_command("migrate", verbosity=0)
    env = {
        **os.environ,
        "PYTHONPATH": str(s.ROOT),
        "PORTAIL_MAIL_BATCH_SIZE": str(args.batch),
    }

    ref = reference(relay, args.n)
    relay.reset()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average {load} (2 cores shared: figures are noisy, compare with the reference)")
    print(f"reference: plain smtplib, one connection, no database: {args.n / ref:,.0f} mails/s")
    failures = 0
    for workers in (1, 2):
        fill_queue(args.n)
        relay.reset()
        elapsed = run_workers(workers, env, args.n, relay)
        received = relay.received()
        duplicates = sum(c - 1 for c in relay.ids.values() if c > 1)
        sent = OutgoingMail.objects.filter(status="sent").count()
        missing = args.n - len(relay.ids)
        drain = relay.last - relay.first  # first to last mail at the relay
        rate = args.n / drain if drain else 0.0
        print(
            f"{workers} worker(s): {rate:,.0f} mails/s at the relay ({rate / (args.n / ref):.2f} "
            f"of the reference); {args.n / elapsed:,.0f} mails/s counting process start-up "
            f"({elapsed:.1f} s); received {received}, duplicates {duplicates}, "
            f"missing {missing}, marked sent {sent}"
        )
        failures += duplicates + missing + (args.n - sent)
    relay.controller.stop()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
