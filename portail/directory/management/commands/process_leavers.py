"""portail process-leavers: deactivate leavers after the grace period, erase them at 90 days."""

from django.conf import settings
from django.core.management.base import BaseCommand

from portail.directory.services import ERASE_AFTER_DAYS, process_leavers


class Command(BaseCommand):
    help = (
        "Désactive les comptes sortants après PORTAIL_LEAVER_GRACE_DAYS jours et efface leurs "
        "données personnelles à 90 jours (arrêté du 30 novembre 2006 modifié, art. 6). "
        "À lancer chaque nuit."
    )

    def handle(self, **options):
        result = process_leavers()
        self.stdout.write(
            f"Comptes désactivés (sortants depuis {settings.PORTAIL_LEAVER_GRACE_DAYS} jours) : "
            f"{result.deactivated}\n"
            f"Comptes effacés (sortants depuis {ERASE_AFTER_DAYS} jours) : {result.erased}"
        )
