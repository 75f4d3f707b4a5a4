from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from portail.accounts.models import Profile, State, User
from portail.accounts.provisioning import create_account, issue_activation_code
from portail.directory.models import Function, SchoolClass, Structure, StructureKind

# The demo applications of `make run` (the `demo` package): a CAS one and an OpenID Connect one.
DEMO_CAS_APP = "Cahier de textes"
DEMO_OIDC_APP = "Classeur"

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

    def add_arguments(self, parser):
        parser.add_argument(
            "--cas-app-url", help="register the demo CAS application served at this URL (a tile)"
        )
        parser.add_argument(
            "--oidc-app-url", help="register the demo OpenID Connect application at this URL"
        )
        # A public client (no secret): code + PKCE is its proof (RFC 7636; RFC 9700 §2.1.1).
        parser.add_argument("--oidc-client-id", default="demo-classeur")

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
        if options.get("cas_app_url"):
            self._cas_app(options["cas_app_url"].rstrip("/") + "/")
        if options.get("oidc_app_url"):
            self._oidc_app(options["oidc_app_url"].rstrip("/"), options["oidc_client_id"])
        self.stdout.write(
            f"  Compte déjà activé : identifiant parent.test, mot de passe « {DEMO_PASSWORD} »"
        )
        self.stdout.write(
            f"  Référent ENT du lycée : identifiant {REFERENT_IDENTIFIER}, "
            f"mot de passe « {REFERENT_PASSWORD} »"
        )
        self.stdout.write(
            f"    Console : {settings.PORTAIL_BASE_URL}/console/ — à la première visite, scannez le QR code "
            "avec une application d'authentification (FreeOTP, Aegis, Google ou Microsoft "
            "Authenticator…) puis saisissez le code à 6 chiffres qu'elle affiche."
        )
        self.stdout.write(
            "    Il ne voit que son lycée : hugo.bernard, élève de l'autre établissement "
            f"({other.name}), n'apparaît pas dans sa console."
        )
        self.stdout.write(
            f"Ouvrez {settings.PORTAIL_BASE_URL}/auth/login — "
            f"courriels : {settings.PORTAIL_BASE_URL}/dev/mailbox/"
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

    def _cas_app(self, url):
        from portail.sso.models import Application

        app, _ = Application.objects.update_or_create(
            name=DEMO_CAS_APP,
            defaults={
                "description": "Devoirs et leçons (démonstration CAS)",
                "short_label": "CT",
                "url": url,
                "kind": Application.Kind.CAS,
                "cas_service_patterns": url,
                "cas_single_logout": True,
                "position": 10,
            },
        )
        app.full_clean()
        self.stdout.write(f"  Application CAS « {app.name} » : {url}")

    def _oidc_app(self, url, client_id):
        from oauth2_provider.models import Application as Client

        from portail.sso.models import Application

        client, _ = Client.objects.update_or_create(
            client_id=client_id,
            defaults={
                "name": DEMO_OIDC_APP,
                "client_type": Client.CLIENT_PUBLIC,
                "authorization_grant_type": Client.GRANT_AUTHORIZATION_CODE,
                "redirect_uris": url + "/callback",
                "post_logout_redirect_uris": url + "/",
                "algorithm": Client.RS256_ALGORITHM,
                "skip_authorization": True,
            },
        )
        app, _ = Application.objects.update_or_create(
            name=DEMO_OIDC_APP,
            defaults={
                "description": "Documents de la classe (démonstration OpenID Connect)",
                "short_label": "CL",
                "url": url + "/",
                "kind": Application.Kind.OIDC,
                "oidc_client": client,
                "position": 20,
            },
        )
        app.full_clean()
        self.stdout.write(f"  Application OpenID Connect « {app.name} » : {url}/")
