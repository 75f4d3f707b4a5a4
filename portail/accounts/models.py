import secrets

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .identifiers import fold_email

identifier_validator = RegexValidator(
    r"^[0-9a-z.]+$",
    "L'identifiant ne comporte que des minuscules sans accent, des chiffres et des points.",
)


class Profile(models.TextChoices):
    ELEVE = "eleve", "Élève"
    PARENT = "parent", "Parent"
    ENSEIGNANT = "enseignant", "Enseignant"
    PERSONNEL = "personnel", "Personnel"


class State(models.TextChoices):
    PENDING = "pending", "Non activé"
    ACTIVE = "active", "Actif"
    BLOCKED = "blocked", "Bloqué"


# "Sortant" (leaving) is not a State: a leaver keeps the state a référent gave him (blocked stays
# blocked, active stays active) and is marked by `leaving_since`, set when a full import no longer
# lists him and cleared if he comes back. After PORTAIL_LEAVER_GRACE_DAYS `deactivated_at` is set
# (no login, no session: see User.is_active), and his personal data is erased within three months
# (arrêté du 30 novembre 2006 modifié, art. 6). `portail process-leavers` does both.


def new_session_stamp() -> str:
    return secrets.token_hex(16)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, identifier, password=None, **fields):
        user = self.model(identifier=identifier, **fields)
        user.set_password(password)  # None gives an unusable password
        user.save(using=self._db)
        return user

    def create_superuser(self, identifier, password=None, **fields):
        fields.setdefault("first_name", "Administrateur")
        fields.setdefault("last_name", "Régional")
        fields.setdefault("profile", Profile.PERSONNEL)
        fields.setdefault("state", State.ACTIVE)
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(identifier, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    identifier = models.CharField(
        "identifiant", max_length=64, unique=True, validators=[identifier_validator]
    )
    first_name = models.CharField("prénom", max_length=150)
    last_name = models.CharField("nom", max_length=150)
    profile = models.CharField("profil", max_length=16, choices=Profile.choices)
    state = models.CharField("état", max_length=16, choices=State.choices, default=State.PENDING)
    # Given at the first connection; the address of every recovery mail.
    # Indexed in Meta: a plain b-tree for the exact lookups of recovery, without the LIKE index
    # that db_index adds on PostgreSQL (nothing searches emails by prefix; imports pay for it).
    email = models.EmailField("adresse de messagerie", blank=True)
    # identifiers.fold_email(email), kept by save(): lost identifier finds accounts by an exact,
    # indexed match on it (never a case-insensitive scan), with the folding of its limit keys.
    email_folded = models.CharField(max_length=254, blank=True, default="", editable=False)
    # The address an import brought (CSV « Courriel », AAF `mail`): where the first-connection
    # credentials are mailed (activation/credentials.py). Not the recovery address: that one is
    # given and confirmed at the first connection. Updated by re-imports while pending only.
    contact_email = models.EmailField("adresse de contact (import)", blank=True)
    # Optional mobile, E.164 (+33612345678).
    phone = models.CharField("téléphone mobile", max_length=20, blank=True)
    structures = models.ManyToManyField(
        "directory.Structure", related_name="members", blank=True, verbose_name="établissements"
    )
    classes = models.ManyToManyField(
        "directory.SchoolClass", related_name="members", blank=True, verbose_name="classes"
    )
    charter_accepted_at = models.DateTimeField("charte acceptée le", null=True, blank=True)
    activated_at = models.DateTimeField("activé le", null=True, blank=True)
    created_at = models.DateTimeField("créé le", default=timezone.now)
    # Rotated to end every session of the account at once (reset, block, password change).
    session_stamp = models.CharField(max_length=32, default=new_session_stamp, editable=False)
    is_staff = models.BooleanField("accès à l'administration Django", default=False)

    # --- Directory (issue 3) ---
    # The source's stable identifier: AAF ENTPersonJointure, the CSV "Id" column, or the legacy
    # ENT's; unique within its source (see Meta). Imports find an account again by it.
    external_source = models.CharField("source", max_length=32, blank=True)
    # NULL, not "": the unique constraint must ignore accounts that have none.
    external_id = models.CharField(  # noqa: DJ001
        "identifiant externe", max_length=64, null=True, blank=True
    )
    birth_date = models.DateField("date de naissance", null=True, blank=True)
    # Identifiant national élève (10 digits + 1 letter, or 9 digits + 2 letters).
    ine = models.CharField("INE", max_length=11, blank=True)
    teaching_groups = models.ManyToManyField(
        "directory.Group", related_name="members", blank=True, verbose_name="groupes"
    )
    # "Sortant": absent from the last full import since then (None: present).
    leaving_since = models.DateTimeField("sortant depuis", null=True, blank=True)
    # Set when a leaver's grace period ends: the account can no longer log in.
    deactivated_at = models.DateTimeField("désactivé le", null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "identifier"
    REQUIRED_FIELDS = ["first_name", "last_name", "profile"]
    EMAIL_FIELD = "email"

    class Meta:
        verbose_name = "compte"
        ordering = ["last_name", "first_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_source", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="unique_external_id_per_source",
            )
        ]
        indexes = [
            # Matching without an external id (names + birth date), and the duplicates list.
            models.Index(fields=["last_name", "first_name", "birth_date"], name="user_names_birth"),
            models.Index(fields=["email"], name="user_email"),
            models.Index(fields=["email_folded"], name="user_email_folded"),
            # Partial: only leavers are indexed, so importing a million present people costs
            # nothing here.
            models.Index(
                fields=["leaving_since"],
                condition=models.Q(leaving_since__isnull=False),
                name="user_leaving_since",
            ),
            # The base an identifier was numbered from (jean.dupont12 -> jean.dupont): bulk
            # imports find every taken jean.dupontN in one indexed query.
            models.Index(
                models.Func(models.F("identifier"), models.Value("0123456789"), function="RTRIM"),
                name="user_identifier_base",
            ),
        ]

    def __str__(self):
        return self.identifier

    def save(self, *args, **kwargs):
        # The folded address follows the address, also when only "email" is saved.
        self.email_folded = fold_email(self.email or "")
        fields = kwargs.get("update_fields")
        if fields is not None and "email" in fields and "email_folded" not in fields:
            kwargs["update_fields"] = [*fields, "email_folded"]
        super().save(*args, **kwargs)

    @property
    def is_active(self):
        # Django's is_active: a blocked or deactivated (leaver) account can neither log in nor
        # keep a session.
        return self.state != State.BLOCKED and self.deactivated_at is None

    @property
    def is_leaving(self):
        return self.leaving_since is not None

    @property
    def display_name(self):
        return f"{self.first_name} {self.last_name}"

    def get_full_name(self):
        return self.display_name

    def get_short_name(self):
        return self.first_name

    def get_session_auth_hash(self):
        # Django checks this on every request: a rotated stamp ends every session of the account,
        # even one whose password hash is unchanged (a reset to the same password, a block).
        return salted_hmac(
            "portail.accounts.User.get_session_auth_hash",
            f"{self.password}:{self.session_stamp}",
            algorithm="sha256",
        ).hexdigest()

    def end_all_sessions(self):
        self.session_stamp = new_session_stamp()


class Token(models.Model):
    """A purpose-bound secret given to a person: stored only as its keyed digest, single use."""

    class Purpose(models.TextChoices):
        ACTIVATION = "activation", "code d'activation"
        RESET = "reset", "lien de réinitialisation"
        # The « Activer mon compte » link of the credentials mail (activation/credentials.py).
        ACTIVATION_LINK = "activation_link", "lien d'activation"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "purpose"])]

    def __str__(self):
        return f"{self.get_purpose_display()} de {self.user_id}"

    def is_usable(self, now=None):
        return self.used_at is None and (now or timezone.now()) < self.expires_at
