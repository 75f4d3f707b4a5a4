"""`portail purge-audit [--dry-run] [--ahead N]`: audit retention, run daily by a timer.

Drops the monthly partitions whose every event is older than PORTAIL_AUDIT_RETENTION_DAYS and
creates the partitions of the coming months (PostgreSQL; see portail/audit/partitions.py). On
SQLite it deletes the events of those same whole months. The purge itself is an audit event.
"""

import argparse
import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from portail.audit import partitions
from portail.audit.models import Event
from portail.audit.services import record


def _months(value: str) -> int:
    if not value.strip().isdigit():
        raise argparse.ArgumentTypeError(f"« {value} » n'est pas un nombre de mois.")
    return int(value)


class Command(BaseCommand):
    help = (
        "Applique la durée de conservation du journal (PORTAIL_AUDIT_RETENTION_DAYS) : supprime "
        "les mois entièrement plus anciens et prépare les mois à venir."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="dire ce qui serait supprimé, sans rien faire"
        )
        parser.add_argument(
            "--ahead", type=_months, default=3, help="nombre de mois à venir à préparer (défaut 3)"
        )

    def handle(self, *args, dry_run, ahead, **options):
        days = settings.PORTAIL_AUDIT_RETENTION_DAYS
        if days < 1:
            raise CommandError("PORTAIL_AUDIT_RETENTION_DAYS doit être un nombre de jours ≥ 1.")
        if not 0 <= ahead <= 24:
            raise CommandError("--ahead : entre 0 et 24 mois.")
        now = timezone.now()
        cutoff = now - datetime.timedelta(days=days)
        if partitions.is_partitioned():
            dropped = self._partitioned(now, cutoff, ahead, dry_run)
        else:
            dropped = self._plain(cutoff, dry_run)
        verb = "seraient supprimés" if dry_run else "supprimés"
        self.stdout.write(
            f"Conservation {days} jours : {len(dropped)} mois {verb}"
            + (f" ({', '.join(dropped)})" if dropped else "")
            + "."
        )
        if dropped and not dry_run:
            record("audit.purge", months=dropped, retention_days=days)

    def _partitioned(self, now, cutoff, ahead, dry_run):
        with transaction.atomic(), connection.cursor() as cursor:
            months = partitions.existing_months(cursor)
            expired = partitions.expired_months(months, cutoff)
            names = [partitions.partition_name(m) for m in expired]
            if dry_run:
                return names
            for name in names:
                # A whole month goes at once: no row is updated or deleted (append-only holds).
                cursor.execute(f"ALTER TABLE {partitions.PARENT} DETACH PARTITION {name}")
                cursor.execute(f"DROP TABLE {name}")
            last = partitions.month_start(now)
            for _ in range(ahead):
                last = partitions.next_month(last)
            first = partitions.month_start(now)
            skipped = partitions.ensure_months(cursor, first, last)
            for name in skipped:
                self.stderr.write(
                    f"Avertissement : {name} non créée, la partition par défaut contient déjà "
                    "des événements de ce mois."
                )
            cursor.execute(f"SELECT count(*) FROM {partitions.DEFAULT}")  # noqa: S608
            stray = cursor.fetchone()[0]
            if stray:
                self.stderr.write(
                    f"Avertissement : {stray} événement(s) hors des mois préparés, dans "
                    f"{partitions.DEFAULT} (lancez purge-audit chaque jour)."
                )
        return names

    def _plain(self, cutoff, dry_run):
        # Whole months too, so both databases keep the same events.
        limit = partitions.month_start(cutoff)
        bound = datetime.datetime(limit.year, limit.month, 1, tzinfo=datetime.UTC)
        old = Event.objects.filter(at__lt=bound)
        names = [partitions.partition_name(m) for m in old.dates("at", "month")]
        if not dry_run and names:
            old._raw_delete(connection.alias)  # retention, not the app rewriting an event
        return names
