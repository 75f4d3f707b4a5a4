import time

from django.core.management.base import BaseCommand

from portail.mail.services import deliver_due


class Command(BaseCommand):
    help = "Send the queued emails that are due (retries); --loop keeps doing it every 30 s."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true")

    def handle(self, *args, loop=False, **options):
        while True:
            sent = deliver_due()
            self.stdout.write(f"{sent} courriel(s) envoyé(s)")
            if not loop:
                return
            time.sleep(30)
