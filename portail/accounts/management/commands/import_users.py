"""`portail import-users FILE.csv --structure UAI --profile eleve --output letters.csv`.

All or nothing: a file with a bad row creates no account and names every bad row. The letters
file holds activation codes in clear: it is created readable by its owner only, and never
overwrites an earlier one (whose codes could not be printed again).
"""

import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from portail.accounts.models import Profile
from portail.directory import csv_import
from portail.directory.models import Structure

from ._errors import Erreur


class Command(BaseCommand):
    help = (
        "Importe des comptes depuis un fichier CSV de la région (séparateur « ; ») et écrit "
        "leurs identifiants et codes d'activation dans un fichier CSV pour les courriers."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="fichier CSV à importer")
        parser.add_argument("--structure", required=True, help="UAI de l'établissement")
        parser.add_argument(
            "--profile", required=True, help="eleve, parent, enseignant ou personnel"
        )
        parser.add_argument(
            "--output", required=True, help="fichier CSV des identifiants et codes à créer"
        )

    def handle(self, *args, file, structure, profile, output, **options):
        if profile not in Profile.values:
            raise Erreur(
                f"Profil « {profile} » inconnu : choisissez eleve, parent, enseignant ou personnel."
            )
        uai = structure.strip().upper()
        school = Structure.objects.filter(uai=uai).first()
        if school is None:
            raise Erreur(
                f"Établissement inconnu : {uai}. Créez-le d'abord avec "
                f'portail add-structure --uai {uai} --name "…".'
            )
        source, target = Path(file), Path(output)
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise Erreur(f"Lecture impossible de {source} : {exc.strerror}.") from None
        if target.exists():
            raise Erreur(
                f"{target} existe déjà : choisissez un autre nom de fichier de sortie "
                "(il contient peut-être les codes d'une importation précédente)."
            )
        if not target.parent.is_dir():
            raise Erreur(f"Le dossier de {target} n'existe pas.")

        try:
            rows = csv_import.parse_people(data, profile)
        except csv_import.ImportRejected as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            count = len(exc.errors)
            plural = "s" if count > 1 else ""
            raise Erreur(
                f"Aucun compte n'a été créé : {count} ligne{plural} en erreur dans {source}. "
                "Corrigez le fichier puis relancez l'importation."
            ) from None

        accounts = self._create_and_write(rows, school, profile, target)
        self.stdout.write(
            f"{len(accounts)} compte{'s' if len(accounts) > 1 else ''} créé"
            f"{'s' if len(accounts) > 1 else ''} dans {school.name} ({school.uai}). "
            f"Identifiants et codes d'activation : {target}"
        )

    def _create_and_write(self, rows, school, profile, target):
        # The letters are written next to their final name (0600, mkstemp) inside the
        # transaction: if writing fails, no account exists whose code nobody could print.
        fd, tmp = tempfile.mkstemp(prefix=".portail-import-", suffix=".csv", dir=target.parent)
        try:
            # UTF-8 with BOM: Excel then shows the accents right.
            with (
                os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as stream,
                transaction.atomic(),
            ):
                accounts = csv_import.create_people(rows, school, profile)
                csv_import.write_letters(accounts, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return accounts
