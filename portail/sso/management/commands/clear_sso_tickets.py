"""`portail clear-sso-tickets`: delete expired CAS tickets and PGTs (cron, e.g. hourly).

Issuance already purges now and then; this keeps the tables small on a quiet instance too.
Expired OAuth tokens are django-oauth-toolkit's: `portail cleartokens`.
"""

from django.core.management.base import BaseCommand

from portail.sso.services import purge_expired_tickets


class Command(BaseCommand):
    help = "Supprime les tickets CAS expirés (ST, PT, PGT)."

    def handle(self, *args, **options):
        deleted = purge_expired_tickets()
        self.stdout.write(f"{deleted} ticket(s) CAS expiré(s) supprimé(s).")
