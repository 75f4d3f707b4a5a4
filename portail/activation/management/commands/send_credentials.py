"""`portail send-credentials --structure UAI [--profile …] [--class …] [--dry-run] [--resend]`.

Mails their identifier and « Activer mon compte » link to the accounts of a school not yet
activated that have a contact address (activation/credentials.py). The mails are queued: the
workers (`portail send-mail --loop`) send them.
"""

from django.core.management.base import BaseCommand

from portail.accounts.management.commands._errors import Erreur as CommandError
from portail.accounts.models import Profile, State, User
from portail.activation import credentials
from portail.directory.models import Structure


class Command(BaseCommand):
    help = (
        "Envoie par courriel leur identifiant et un lien « Activer mon compte » aux comptes non "
        "activés d'un établissement qui ont une adresse de contact (importée)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--structure", required=True, help="UAI de l'établissement")
        parser.add_argument("--profile", help="eleve, parent, enseignant ou personnel")
        parser.add_argument("--class", dest="school_class", help="nom de la classe")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="aperçu : dire ce qui serait envoyé, sans rien envoyer",
        )
        parser.add_argument(
            "--resend",
            action="store_true",
            help="renvoyer aussi aux comptes déjà destinataires il y a moins de 24 h",
        )

    def handle(self, *args, structure, profile, school_class, dry_run, resend, **options):
        uai = structure.strip().upper()
        school = Structure.objects.filter(uai=uai).first()
        if school is None:
            raise CommandError(f"Établissement inconnu : {uai}.")
        accounts = User.objects.filter(structures=school, state=State.PENDING)
        if profile:
            if profile not in Profile.values:
                raise CommandError(
                    f"Profil « {profile} » inconnu : choisissez eleve, parent, enseignant ou "
                    "personnel."
                )
            accounts = accounts.filter(profile=profile)
        if school_class:
            if not school.classes.filter(name=school_class).exists():
                raise CommandError(f"Classe « {school_class} » inconnue dans {school.name}.")
            accounts = accounts.filter(classes__structure=school, classes__name=school_class)
        accounts = User.objects.filter(pk__in=accounts.values("pk"))
        if dry_run:
            report = credentials.plan(accounts, resend=resend)
        else:
            report = credentials.send_credentials(None, accounts, resend=resend)
        self.stdout.write(f"{school.name} ({school.uai}) : {report.summary()}")
        if dry_run:
            self.stdout.write("Aperçu seulement : aucun courriel n'a été envoyé.")
        elif report.sent:
            self.stdout.write("Les courriels partent avec les envois de « portail send-mail ».")
