"""`portail import-users FILE.csv --structure UAI --profile eleve --output letters.csv [--full]
[--dry-run]`.

The region's CSV template of one profile, through the directory's idempotent import (the one the
console's import page uses): a re-run updates the accounts it finds again (names, classes) and
creates only the new ones. `--full`: the file lists every account of this profile in the
structure, the absent ones become "sortant". `--dry-run`: say what would happen, change nothing.

All or nothing: a file with a bad row changes nothing and names every bad row and why. The
letters file holds the new accounts' activation codes in clear: it is created readable by its
owner only, and never overwrites an earlier one (whose codes could not be printed again). The
accounts and their letters are one unit, even if the command is killed: see
`portail.directory.imports.pending` (a re-run writes the letters an interrupted run owed).
"""

from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from portail.accounts.models import Profile
from portail.activation.credentials import mail_credentials
from portail.directory.imports import pending
from portail.directory.imports.region_csv import import_region_csv
from portail.directory.imports.report import ImportFileError
from portail.directory.models import Structure

from ._errors import Erreur


class _Refused(Exception):
    """Rolls the import back: the file has bad rows."""

    def __init__(self, report):
        self.report = report


def _plural(count, word):
    return f"{count} {word}{'s' if count > 1 else ''}"


class Command(BaseCommand):
    help = (
        "Importe des comptes depuis un fichier CSV de la région (modèle d'un profil) et écrit "
        "les identifiants et codes d'activation des nouveaux comptes dans un fichier CSV pour "
        "les courriers. Une nouvelle importation du même fichier met les comptes à jour."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="fichier CSV à importer")
        parser.add_argument("--structure", required=True, help="UAI de l'établissement")
        parser.add_argument(
            "--profile", required=True, help="eleve, parent, enseignant ou personnel"
        )
        parser.add_argument(
            "--output", help="fichier CSV des identifiants et codes à créer (sauf --dry-run)"
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="le fichier liste tous les comptes de ce profil : les absents deviennent sortants",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="aperçu seulement : rien n'est enregistré"
        )
        parser.add_argument(
            "--send-credentials",
            action="store_true",
            help="une fois l'import enregistré, envoyer par courriel son identifiant et un lien "
            "d'activation à chaque nouveau compte qui a une adresse",
        )

    def handle(self, *args, file, structure, profile, output, full, dry_run, **options):
        send_credentials = options.get("send_credentials", False)
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
        source = Path(file)
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise Erreur(f"Lecture impossible de {source} : {exc.strerror}.") from None
        target = None
        if not dry_run:
            if not output:
                raise Erreur("Indiquez le fichier des codes d'activation à créer : --output.")
            target = Path(output).absolute()
            if not target.parent.is_dir():
                raise Erreur(f"Le dossier de {target} n'existe pas.")
            self.adopted = pending.settle(target, self.stdout.write)
            if target.exists():
                raise Erreur(
                    f"{target} existe déjà : choisissez un autre nom de fichier de sortie "
                    "(il contient peut-être les codes d'une importation précédente)."
                )

        def run():
            report = import_region_csv(
                data, structure=school, profile=profile, full=full, dry_run=dry_run
            )
            if report.rejected:
                raise _Refused(report)
            if not (report.created or report.updated or report.unchanged):
                raise Erreur(f"{source} ne contient aucune personne à importer.")
            return report

        try:
            report = run() if target is None else self._import_and_write(run, target)
        except ImportFileError as exc:
            raise Erreur(f"{exc} Aucun compte n'a été créé ni modifié.") from None
        except _Refused as refused:
            bad = sorted(refused.report.rejected, key=lambda r: r.row)
            for r in bad:
                who = f" ({r.name})" if r.name else ""
                self.stderr.write(f"Ligne {r.row}{who} : {r.reason}")
            raise Erreur(
                f"Aucun compte n'a été créé ni modifié : {_plural(len(bad), 'ligne')} en erreur "
                f"dans {source}. Corrigez le fichier puis relancez l'importation."
            ) from None

        created = len(report.created)
        self.stdout.write(
            f"{_plural(created, 'compte')} créé{'s' if created > 1 else ''} dans {school.name} "
            f"({school.uai}), {report.updated} mis à jour, {report.unchanged} inchangé(s), "
            f"{report.left} sortant(s)."
        )
        for warning in report.warnings:
            self.stdout.write(f"Avertissement : {warning}")
        if dry_run:
            self.stdout.write("Aperçu seulement : rien n'a été enregistré.")
        else:
            self.stdout.write(f"Identifiants et codes d'activation : {target}")
            if send_credentials:  # after the commit: exactly the accounts this run created
                self.stdout.write(mail_credentials(report.created))

    def _import_and_write(self, run, target):
        # The letters are sealed into the database in the import's transaction, and the file is
        # written from them once it has committed (pending's module doc): no kill can separate
        # the accounts from their codes, and no temporary file with codes stays behind.
        run_id = pending.new_run()
        with transaction.atomic():
            report = run()
            pending.adopt(run_id, self.adopted, target, "region")
            pending.stash(run_id, target, "region", report.created)
            pending.checkpoint("before-commit")
        pending.checkpoint("after-commit")
        try:
            pending.deliver(run_id, target, "region")
        except OSError as exc:
            raise Erreur(
                f"Les comptes sont créés mais {target} n'a pas pu être écrit ({exc.strerror}). "
                "Les codes sont conservés chiffrés : relancez la même commande pour écrire "
                "les courriers."
            ) from None
        return report
