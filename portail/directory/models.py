"""Structures (établissements) and their classes: what an account belongs to."""

from django.core.validators import RegexValidator
from django.db import models

# UAI (unité administrative immatriculée): seven digits and a check letter, e.g. 0751234A.
uai_validator = RegexValidator(
    r"^[0-9]{7}[A-Z]$", "Le code UAI doit comporter 7 chiffres suivis d'une lettre majuscule."
)


class Structure(models.Model):
    uai = models.CharField("UAI", max_length=8, unique=True, validators=[uai_validator])
    name = models.CharField("nom", max_length=200)

    class Meta:
        ordering = ["name"]
        verbose_name = "établissement"

    def __str__(self):
        return f"{self.name} ({self.uai})"


class SchoolClass(models.Model):
    structure = models.ForeignKey(Structure, on_delete=models.CASCADE, related_name="classes")
    name = models.CharField("nom", max_length=64)

    class Meta:
        ordering = ["structure", "name"]
        verbose_name = "classe"
        constraints = [
            models.UniqueConstraint(fields=["structure", "name"], name="unique_class_per_structure")
        ]

    def __str__(self):
        return self.name
