"""`portail reset-second-factor IDENTIFIER`: for the référent who lost both his phone and his
recovery codes; at his next visit of /console/ he enrols a new authenticator app."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portail.accounts.models import User
from portail.audit.services import record
from portail.console.models import RecoveryCode, TOTPDevice


class Command(BaseCommand):
    help = "Efface l'application d'authentification et les codes de secours d'un compte."

    def add_arguments(self, parser):
        parser.add_argument("identifier")

    @transaction.atomic
    def handle(self, identifier, **options):
        user = User.objects.filter(identifier=identifier).first()
        if user is None:
            raise CommandError(f"Compte inconnu : {identifier}")
        TOTPDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        user.end_all_sessions()  # a session that passed the old factor ends too
        user.save(update_fields=["session_stamp"])
        record("console.totp.reset", target=user)
        self.stdout.write(
            f"{identifier} : à sa prochaine visite de la console, il enregistre une nouvelle application."
        )
