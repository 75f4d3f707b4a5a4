"""`portail purge-mail [--dry-run]`: the mail queue's retention, run daily by a timer.

Deletes the sent emails (whose bodies were already erased at sending) and the failed ones older
than PORTAIL_MAIL_RETENTION_DAYS; pending emails are never touched. The purge is an audit event.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portail.audit.services import record
from portail.mail.queue import purge_old


class Command(BaseCommand):
    help = (
        "Applique la durée de conservation des courriels (PORTAIL_MAIL_RETENTION_DAYS) : supprime "
        "les courriels envoyés ou en échec plus anciens ; ceux à envoyer restent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="dire ce qui serait supprimé, sans rien faire"
        )

    def handle(self, *args, dry_run, **options):
        days = settings.PORTAIL_MAIL_RETENTION_DAYS
        if days < 1:
            raise CommandError("PORTAIL_MAIL_RETENTION_DAYS doit être un nombre de jours ≥ 1.")
        counts = purge_old(days, dry_run=dry_run)
        verb = "seraient supprimés" if dry_run else "supprimés"
        self.stdout.write(
            f"Courriels de plus de {days} jours {verb} : "
            f"{counts['sent']} envoyé(s), {counts['failed']} en échec"
        )
        if not dry_run and any(counts.values()):
            record("mail.purged", by="purge-mail", retention_days=days, **counts)
