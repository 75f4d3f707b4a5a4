"""The directory: structures (établissements), classes, groups, parent–child links and functions.

Who administers what is a `Function`: a "référent ENT" is the local administrator of one structure
(one row per structure he administers), an "administrateur régional" administers them all (no
structure). `structures_administered_by(user)` is the one question every console view asks.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

# UAI (unité administrative immatriculée): seven digits and a check letter, e.g. 0751234A.
uai_validator = RegexValidator(
    r"^[0-9]{7}[A-Z]$", "Le code UAI doit comporter 7 chiffres suivis d'une lettre majuscule."
)


class StructureKind(models.TextChoices):
    ECOLE = "ecole", "École"
    COLLEGE = "college", "Collège"
    LYCEE = "lycee", "Lycée"
    LYCEE_PRO = "lycee_pro", "Lycée professionnel"
    LYCEE_AGRICOLE = "lycee_agricole", "Lycée agricole"
    EREA = "erea", "EREA"
    CFA = "cfa", "CFA"
    AUTRE = "autre", "Autre"


class StructureQuerySet(models.QuerySet):
    def administered_by(self, user):
        """The structures `user` may see and act on: all for a regional admin, else his own."""
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        functions = Function.objects.filter(user=user)
        if functions.filter(role=Function.Role.REGIONAL_ADMIN).exists():
            return self.all()
        return self.filter(
            pk__in=functions.filter(role=Function.Role.REFERENT).values("structure_id")
        )


class Structure(models.Model):
    uai = models.CharField("UAI", max_length=8, unique=True, validators=[uai_validator])
    name = models.CharField("nom", max_length=200)
    kind = models.CharField(
        "type", max_length=16, choices=StructureKind.choices, default=StructureKind.AUTRE
    )
    # The académie's ENTStructureJointure when the structure comes from the AAF feed.
    external_id = models.CharField(  # noqa: DJ001 (NULL: unique must ignore the ones without)
        "identifiant externe", max_length=64, null=True, blank=True, unique=True
    )

    objects = StructureQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "établissement"

    def __str__(self):
        return f"{self.name} ({self.uai})"


class SchoolClass(models.Model):
    structure = models.ForeignKey(Structure, on_delete=models.CASCADE, related_name="classes")
    name = models.CharField("nom", max_length=64)
    # "Niveau" of the region's CSV / AAF (e.g. "2NDE GENERALE"); informative.
    level = models.CharField("niveau", max_length=64, blank=True)

    class Meta:
        ordering = ["structure", "name"]
        verbose_name = "classe"
        constraints = [
            models.UniqueConstraint(fields=["structure", "name"], name="unique_class_per_structure")
        ]

    def __str__(self):
        return self.name


class Group(models.Model):
    """A teaching group (groupe pédagogique: options, languages, half classes) of a structure."""

    structure = models.ForeignKey(Structure, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField("nom", max_length=64)

    class Meta:
        ordering = ["structure", "name"]
        verbose_name = "groupe"
        constraints = [
            models.UniqueConstraint(fields=["structure", "name"], name="unique_group_per_structure")
        ]

    def __str__(self):
        return self.name


class Relationship(models.Model):
    """A parent (or legal guardian) and one child; a parent has one row per child, anywhere."""

    parent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="child_links"
    )
    child = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="parent_links"
    )
    created_at = models.DateTimeField("créé le", auto_now_add=True)

    class Meta:
        verbose_name = "lien parent–élève"
        constraints = [
            models.UniqueConstraint(fields=["parent", "child"], name="unique_parent_child"),
            models.CheckConstraint(condition=~Q(parent=models.F("child")), name="parent_not_child"),
        ]

    def __str__(self):
        return f"{self.parent_id} → {self.child_id}"


class Function(models.Model):
    """An administrative function: référent ENT of one structure, or administrateur régional."""

    class Role(models.TextChoices):
        REFERENT = "referent", "Référent ENT"
        REGIONAL_ADMIN = "regional_admin", "Administrateur régional"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="functions"
    )
    role = models.CharField("fonction", max_length=16, choices=Role.choices)
    # The administered structure of a référent; none for a regional admin (he has them all).
    structure = models.ForeignKey(
        Structure, on_delete=models.CASCADE, null=True, blank=True, related_name="functions"
    )
    created_at = models.DateTimeField("créé le", auto_now_add=True)

    class Meta:
        verbose_name = "fonction"
        constraints = [
            models.CheckConstraint(
                condition=(Q(role="referent") & Q(structure__isnull=False))
                | (Q(role="regional_admin") & Q(structure__isnull=True)),
                name="function_structure_matches_role",
            ),
            models.UniqueConstraint(
                fields=["user", "role", "structure"], name="unique_function_per_structure"
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(role="regional_admin"),
                name="unique_regional_admin_function",
            ),
        ]

    def __str__(self):
        where = self.structure.uai if self.structure_id else "région"
        return f"{self.get_role_display()} ({where})"


def structures_administered_by(user):
    """Every structure `user` administers (a queryset; all of them for a regional admin)."""
    return Structure.objects.administered_by(user)


def is_regional_admin(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and Function.objects.filter(user=user, role=Function.Role.REGIONAL_ADMIN).exists()
    )


def administers(user, structure) -> bool:
    """May `user` act on `structure`? (a regional admin: on every one)."""
    return structures_administered_by(user).filter(pk=structure.pk).exists()


def accounts_administered_by(user):
    """Every account that belongs to a structure `user` administers (parents included: an
    import attaches a parent to his children's structures)."""
    from portail.accounts.models import User

    structures = structures_administered_by(user)
    return User.objects.filter(
        pk__in=User.structures.through.objects.filter(structure__in=structures).values("user_id")
    )


# The sealed letters of an import whose file is not written yet (issue 8 §4; see its module).
from portail.directory.imports.pending import PendingLetters  # noqa: E402,F401
