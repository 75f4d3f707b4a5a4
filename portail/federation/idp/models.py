"""SAML service providers (the GAR, resources), the GAR person identifier, open SAML sessions.

A ServiceProvider is registered by an administrator from its metadata (file or URL); it is also
a tile of the home page (IdP-initiated SSO), shown to the profiles and structures chosen, like an
sso.Application.
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from portail.accounts.models import Profile

# What a service provider may receive: the GAR's attribute names (basic NameFormat).
ATTRIBUTES = {
    "GARPersonIdentifiant": "Identifiant de la personne (GARPersonIdentifiant)",
    "idEnt": "Code de l'ENT (idEnt)",
    "GARStructureUAI": "UAI des établissements (GARStructureUAI)",
    "GARPersonProfils": "Profil national (GARPersonProfils)",
    "GARPersonNom": "Nom (GARPersonNom)",
    "GARPersonPrenom": "Prénom (GARPersonPrenom)",
    "GARPersonNomAffichage": "Nom affiché",
    "GARPersonMail": "Adresse de messagerie",
}
# The GAR's profile: everything but the email address, which is released only on purpose.
DEFAULT_RELEASE = [name for name in ATTRIBUTES if name != "GARPersonMail"]

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"


def default_release():
    return list(DEFAULT_RELEASE)


def default_profiles():
    return [value for value, _ in Profile.choices]


class ServiceProvider(models.Model):
    class NameIdFormat(models.TextChoices):
        PERSISTENT = NAMEID_PERSISTENT, "persistant, propre au fournisseur (pairwise)"
        TRANSIENT = NAMEID_TRANSIENT, "transitoire (nouveau à chaque connexion)"

    entity_id = models.CharField("identifiant SAML (entityID)", max_length=500, unique=True)
    name = models.CharField("nom", max_length=100)
    description = models.CharField("description courte", max_length=200, blank=True)
    short_label = models.CharField(
        "sigle de la tuile", max_length=4, help_text="Deux à quatre lettres affichées comme icône."
    )
    enabled = models.BooleanField("actif", default=True)
    show_tile = models.BooleanField(
        "tuile sur l'accueil",
        default=True,
        help_text="La tuile ouvre une connexion à l'initiative du portail (IdP-initiated).",
    )
    position = models.PositiveSmallIntegerField("ordre", default=100)
    profiles = models.JSONField(
        "profils autorisés", default=default_profiles, blank=True, help_text="Vide : aucun profil."
    )
    structures = models.ManyToManyField(
        "directory.Structure",
        blank=True,
        related_name="saml_service_providers",
        verbose_name="établissements autorisés",
        help_text="Vide : tous les établissements.",
    )
    metadata_xml = models.TextField("métadonnées SAML (XML)")
    metadata_url = models.URLField("adresse des métadonnées", max_length=500, blank=True)
    released_attributes = models.JSONField(
        "attributs transmis", default=default_release, blank=True
    )
    name_id_format = models.CharField(
        "format du NameID",
        max_length=80,
        choices=NameIdFormat.choices,
        default=NameIdFormat.PERSISTENT,
    )
    # OIDC Core §8.1-style sector: providers sharing it see the same persistent NameID.
    pairwise_sector = models.CharField("secteur d'identifiant", max_length=200, blank=True)
    encrypt_assertions = models.BooleanField(
        "chiffrer les assertions",
        default=False,
        help_text="Avec le certificat de chiffrement des métadonnées du fournisseur.",
    )
    require_signed_requests = models.BooleanField(
        "exiger des demandes signées",
        default=False,
        help_text="Coché aussi d'office quand les métadonnées disent AuthnRequestsSigned.",
    )
    relay_state = models.CharField(
        "page d'arrivée (RelayState)",
        max_length=500,
        blank=True,
        help_text="Envoyée avec une connexion ouverte depuis la tuile.",
    )

    class Meta:
        ordering = ["position", "name"]
        verbose_name = "fournisseur de services SAML"
        verbose_name_plural = "fournisseurs de services SAML"

    def __str__(self):
        return self.name

    @property
    def url(self):
        """Where the tile leads: IdP-initiated SSO towards this provider."""
        return reverse("federation_idp:initiate", args=[self.pk])

    def is_available_to(self, user) -> bool:
        if not self.enabled or user.profile not in (self.profiles or []):
            return False
        allowed = {s.pk for s in self.structures.all()}
        if not allowed:
            return True
        return bool(allowed & set(user.structures.values_list("pk", flat=True)))


class PersonIdentifier(models.Model):
    """GARPersonIdentifiant: the ENT's identifier of a person, as the directory exports send it.

    A random UUID given once and never changed (a rename, a new AAF jointure or a new login keep
    it); not derived from the identifier or the names, so it reveals nothing.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gar_identifier"
    )
    value = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "identifiant GAR"

    def __str__(self):
        return str(self.value)


class SamlSession(models.Model):
    """An assertion handed to a service provider in a portal session: what single logout ends."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=64, blank=True, db_index=True)
    provider = models.ForeignKey(ServiceProvider, on_delete=models.CASCADE, related_name="+")
    name_id = models.CharField(max_length=200)
    name_id_format = models.CharField(max_length=80)
    session_index = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "session SAML"

    def __str__(self):
        return f"session SAML de {self.user_id} chez {self.provider_id}"
