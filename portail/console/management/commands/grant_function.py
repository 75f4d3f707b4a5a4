"""`portail grant-function IDENTIFIER --uai UAI` (référent ENT) or `--regional` (administrateur
régional): the command-line way to open the console to someone, e.g. the first regional admin."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portail.accounts.models import User
from portail.audit.services import record
from portail.directory.models import Function, Structure


class Command(BaseCommand):
    help = "Donne la fonction de référent ENT d'un établissement, ou d'administrateur régional."

    def add_arguments(self, parser):
        parser.add_argument("identifier")
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--uai", help="établissement administré (référent ENT)")
        where.add_argument("--regional", action="store_true", help="administrateur régional")

    @transaction.atomic
    def handle(self, identifier, uai=None, regional=False, **options):
        user = User.objects.filter(identifier=identifier).first()
        if user is None:
            raise CommandError(f"Compte inconnu : {identifier}")
        if regional:
            role, structure = Function.Role.REGIONAL_ADMIN, None
        else:
            structure = Structure.objects.filter(uai=uai).first()
            if structure is None:
                raise CommandError(f"Établissement inconnu : {uai}")
            role = Function.Role.REFERENT
        _, created = Function.objects.get_or_create(user=user, role=role, structure=structure)
        if created:
            record(
                "console.function.granted",
                target=user,
                role=role,
                structure=structure.uai if structure else "",
            )
        where = structure.name if structure else "toute la région"
        self.stdout.write(
            f"{identifier} : {Function.Role(role).label} ({where}). "
            "À sa première visite de /console/, il enregistre son application d'authentification."
        )
