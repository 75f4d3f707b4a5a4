"""portail import-aaf DIR: import the académie's full AAF export (structures, accounts, links).

With `--output`, the accounts and their letters file are one unit even if the command is killed:
see `portail.directory.imports.pending` (a re-run writes the letters an interrupted run owed).
"""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portail.activation.credentials import mail_credentials
from portail.directory.imports import pending
from portail.directory.imports.aaf import import_aaf
from portail.directory.imports.report import ImportFileError


class Command(BaseCommand):
    help = "Importe un export AAF complet (fichiers *_Complet_<date>_<catégorie>_NNNN.xml)."

    def add_arguments(self, parser):
        parser.add_argument("directory", help="dossier contenant les fichiers XML de l'AAF")
        parser.add_argument("--dry-run", action="store_true", help="aperçu : rien n'est enregistré")
        parser.add_argument(
            "--no-leavers",
            action="store_true",
            help="ne pas marquer « sortant » les personnes absentes de l'export",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=1,
            help=(
                "nombre de fichiers lus en parallèle (processus) ; utile si l'export compte "
                "beaucoup de fichiers et que la machine a des cœurs libres"
            ),
        )
        parser.add_argument(
            "--send-credentials",
            action="store_true",
            help="une fois l'import enregistré, envoyer par courriel son identifiant et un lien "
            "d'activation à chaque nouveau compte qui a une adresse",
        )
        parser.add_argument(
            "--output",
            help="CSV (;) des comptes créés avec leur code d'activation, pour les fiches",
        )

    def handle(self, directory, dry_run, no_leavers, output, workers, **options):
        started = time.monotonic()
        target = adopted = None
        if output and not dry_run:
            target = Path(output).absolute()
            if not target.parent.is_dir():
                raise CommandError(f"Le dossier de {target} n'existe pas.")
            adopted = pending.settle(target, self.stdout.write)
            if target.exists():
                raise CommandError(
                    f"{target} existe déjà : choisissez un autre nom de fichier de sortie "
                    "(il contient peut-être les codes d'une importation précédente)."
                )
        run_id = pending.new_run()
        try:
            # The letters are sealed in the import's transaction, written after it commits.
            with transaction.atomic():
                report = import_aaf(
                    directory, dry_run=dry_run, leavers=not no_leavers, workers=workers
                )
                if target is not None:
                    pending.adopt(run_id, adopted, target, "aaf")
                    pending.stash(run_id, target, "aaf", report.created)
                    pending.checkpoint("before-commit")
        except ImportFileError as exc:
            raise CommandError(f"{exc} Rien n'a été modifié.") from exc
        pending.checkpoint("after-commit")
        elapsed = time.monotonic() - started
        self.stdout.write(report.summary())
        self.stdout.write(f"Durée : {elapsed:.1f} s")
        if target is not None:
            try:
                pending.deliver(run_id, target, "aaf")
            except OSError as exc:
                raise CommandError(
                    f"Les comptes sont créés mais {target} n'a pas pu être écrit "
                    f"({exc.strerror}). Les codes sont conservés chiffrés : relancez la même "
                    "commande pour écrire les courriers."
                ) from None
            self.stdout.write(f"Identifiants et codes écrits dans {output}")
        if options.get("send_credentials") and not dry_run:
            # After the commit: exactly the accounts this run created.
            self.stdout.write(mail_credentials(report.created))
