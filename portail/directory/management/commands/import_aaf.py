"""portail import-aaf DIR: import the académie's full AAF export (structures, accounts, links)."""

import csv
import os
import time

from django.core.management.base import BaseCommand, CommandError

from portail.accounts.models import Profile
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
            "--output",
            help="CSV (;) des comptes créés avec leur code d'activation, pour les fiches",
        )

    def handle(self, directory, dry_run, no_leavers, output, workers, **options):
        started = time.monotonic()
        try:
            report = import_aaf(directory, dry_run=dry_run, leavers=not no_leavers, workers=workers)
        except ImportFileError as exc:
            raise CommandError(f"{exc} Rien n'a été modifié.") from exc
        elapsed = time.monotonic() - started
        self.stdout.write(report.summary())
        self.stdout.write(f"Durée : {elapsed:.1f} s")
        if output and not dry_run:
            write_credentials(output, report)
            self.stdout.write(f"Identifiants et codes écrits dans {output}")


def write_credentials(path, report):
    # Activation codes in clear: readable by the owner only, like a key file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["Nom", "Prénom", "Profil", "Classes", "Identifiant", "Code d'activation"])
        for a in report.created:
            writer.writerow(
                [
                    _cell(a.last_name),
                    _cell(a.first_name),
                    Profile(a.profile).label,
                    _cell(", ".join(a.classes)),
                    a.identifier,
                    a.activation_code,
                ]
            )


def _cell(value: str) -> str:
    # A spreadsheet runs cells that start with = + - @ as formulas (CSV injection, OWASP).
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
