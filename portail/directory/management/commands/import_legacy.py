"""portail import-legacy FILE --structure UAI: accounts of a former ENT, password hashes kept."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portail.directory.imports.legacy import import_legacy_accounts
from portail.directory.imports.report import ImportFileError
from portail.directory.models import Structure


class Command(BaseCommand):
    help = (
        "Migre les comptes d'un ancien ENT (identifiant et empreinte du mot de passe conservés) : "
        "Identifiant;Empreinte;Prénom;Nom;Profil;Date de naissance;Classes;Courriel;Id"
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--structure", required=True, help="UAI de l'établissement")
        parser.add_argument("--source", default="ent77", help="nom de l'ancien ENT")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, file, structure, source, dry_run, **options):
        try:
            school = Structure.objects.get(uai=structure.strip().upper())
        except Structure.DoesNotExist as exc:
            raise CommandError(f"Établissement inconnu : {structure}") from exc
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Fichier illisible : {file}") from exc
        try:
            report = import_legacy_accounts(data, structure=school, source=source, dry_run=dry_run)
        except ImportFileError as exc:
            raise CommandError(f"{exc} Rien n'a été modifié.") from exc
        self.stdout.write(report.summary())
