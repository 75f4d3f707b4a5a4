from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from portail.accounts.models import Profile, State, User
from portail.accounts.provisioning import create_account, issue_activation_code
from portail.directory.models import SchoolClass, Structure

DEMO_UAI = "0751234A"
DEMO_PASSWORD = "cheval orange batterie agrafe"  # noqa: S105 (printed for the demo, by design)
PEOPLE = [
    ("Élodie", "Dupré", Profile.ELEVE, "2nde 3"),
    ("Lucas", "Martin", Profile.ELEVE, "2nde 3"),
    ("Inès", "Benali", Profile.ELEVE, "1ère G2"),
    ("Sophie", "Martin", Profile.PARENT, None),
    ("Paul", "Lefèvre", Profile.ENSEIGNANT, None),
]


class Command(BaseCommand):
    help = "Load the demo school (idempotent) and print its identifiers and activation codes."

    @transaction.atomic
    def handle(self, *args, **options):
        school, _ = Structure.objects.get_or_create(
            uai=DEMO_UAI, defaults={"name": "Lycée Claude Monet (démonstration)"}
        )
        if school.members.exists():
            # Codes are stored only as digests: give the still-pending demo accounts new ones.
            self.stdout.write(
                "École de démonstration (nouveaux codes pour les comptes non activés) :"
            )
            for user in school.members.filter(state=State.PENDING):
                code = issue_activation_code(user)
                self.stdout.write(
                    f"  {user.display_name:<20} identifiant {user.identifier:<18} code d'activation {code}"
                )
        else:
            self.stdout.write("École de démonstration créée :")
            for first, last, profile, class_name in PEOPLE:
                classes = (
                    [SchoolClass.objects.get_or_create(structure=school, name=class_name)[0]]
                    if class_name
                    else []
                )
                user, code = create_account(
                    first, last, profile, structures=[school], classes=classes
                )
                self.stdout.write(
                    f"  {user.display_name:<20} identifiant {user.identifier:<18} code d'activation {code}"
                )
            demo = User.objects.create_user(
                "parent.test",
                DEMO_PASSWORD,
                first_name="Parent",
                last_name="Test",
                profile=Profile.PARENT,
                state=State.ACTIVE,
                email="parent.test@example.org",
                activated_at=timezone.now(),
                charter_accepted_at=timezone.now(),
            )
            demo.structures.set([school])
        self.stdout.write(
            f"  Compte déjà activé : identifiant parent.test, mot de passe « {DEMO_PASSWORD} »"
        )
        self.stdout.write(
            "Ouvrez http://127.0.0.1:8000/auth/login — courriels : http://127.0.0.1:8000/dev/mailbox/"
        )
