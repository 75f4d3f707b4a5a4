from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from portail.accounts.models import Profile, State, User
from portail.accounts.provisioning import create_account, issue_activation_code
from portail.directory.models import Function, SchoolClass, Structure, StructureKind

DEMO_UAI = "0751234A"
DEMO_PASSWORD = "cheval orange batterie agrafe"  # noqa: S105 (printed for the demo, by design)
PEOPLE = [
    ("Élodie", "Dupré", Profile.ELEVE, "2nde 3"),
    ("Lucas", "Martin", Profile.ELEVE, "2nde 3"),
    ("Inès", "Benali", Profile.ELEVE, "1ère G2"),
    ("Sophie", "Martin", Profile.PARENT, None),
    ("Paul", "Lefèvre", Profile.ENSEIGNANT, None),
]
# The référent ENT of the demo school, to try /console/ (it also asks for a TOTP second factor).
REFERENT_IDENTIFIER = "referent.demo"
REFERENT_PASSWORD = "girafe bleue sous la lune"  # noqa: S105 (printed for the demo, by design)
# A second school the demo référent does not administer: its pupil never shows in his console.
OTHER_UAI = "0772345B"
OTHER_PEOPLE = [("Hugo", "Bernard", Profile.ELEVE, "5e A")]


class Command(BaseCommand):
    help = "Load the demo schools (idempotent) and print their identifiers and activation codes."

    @transaction.atomic
    def handle(self, *args, **options):
        school, _ = Structure.objects.get_or_create(
            uai=DEMO_UAI,
            defaults={"name": "Lycée Claude Monet (démonstration)", "kind": StructureKind.LYCEE},
        )
        other, _ = Structure.objects.get_or_create(
            uai=OTHER_UAI,
            defaults={
                "name": "Collège Berthe Morisot (démonstration)",
                "kind": StructureKind.COLLEGE,
            },
        )
        self._people(school, PEOPLE)
        self._active_parent(school)
        self._people(other, OTHER_PEOPLE)
        self._referent(school)
        self.stdout.write(
            f"  Compte déjà activé : identifiant parent.test, mot de passe « {DEMO_PASSWORD} »"
        )
        self.stdout.write(
            f"  Référent ENT du lycée : identifiant {REFERENT_IDENTIFIER}, "
            f"mot de passe « {REFERENT_PASSWORD} »"
        )
        self.stdout.write(
            "    Console : http://127.0.0.1:8000/console/ — à la première visite, scannez le QR code "
            "avec une application d'authentification (FreeOTP, Aegis, Google ou Microsoft "
            "Authenticator…) puis saisissez le code à 6 chiffres qu'elle affiche."
        )
        self.stdout.write(
            "    Il ne voit que son lycée : hugo.bernard, élève de l'autre établissement "
            f"({other.name}), n'apparaît pas dans sa console."
        )
        self.stdout.write(
            "Ouvrez http://127.0.0.1:8000/auth/login — courriels : http://127.0.0.1:8000/dev/mailbox/"
        )

    def _people(self, school, people):
        """Each demo person once; codes are stored only as digests, so a still-pending account
        gets a new code at every run (the printed one always works)."""
        self.stdout.write(f"{school.name} :")
        for first, last, profile, class_name in people:
            classes = (
                [SchoolClass.objects.get_or_create(structure=school, name=class_name)[0]]
                if class_name
                else []
            )
            user = school.members.filter(first_name=first, last_name=last, profile=profile).first()
            if user is None:
                user, code = create_account(
                    first, last, profile, structures=[school], classes=classes
                )
            elif user.state == State.PENDING:
                code = issue_activation_code(user)
            else:
                self.stdout.write(
                    f"  {user.display_name:<20} identifiant {user.identifier:<18} déjà activé"
                )
                continue
            self.stdout.write(
                f"  {user.display_name:<20} identifiant {user.identifier:<18} code d'activation {code}"
            )

    def _active_parent(self, school):
        if User.objects.filter(identifier="parent.test").exists():
            return
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

    def _referent(self, school):
        referent = User.objects.filter(identifier=REFERENT_IDENTIFIER).first()
        if referent is None:
            referent = User.objects.create_user(
                REFERENT_IDENTIFIER,
                REFERENT_PASSWORD,
                first_name="Référent",
                last_name="Démo",
                profile=Profile.PERSONNEL,
                state=State.ACTIVE,
                activated_at=timezone.now(),
                charter_accepted_at=timezone.now(),
            )
            referent.structures.set([school])
        Function.objects.get_or_create(user=referent, role=Function.Role.REFERENT, structure=school)
