from django.conf import settings
from django.db import models


class SeenAssertion(models.Model):
    """An ÉduConnect assertion already used, kept until it expires: a replay is refused
    (SAML 2.0 profiles §4.1.4.5, OWASP ASVS 5.0 V10). One row per assertion ID, whatever node
    received it: the unique key makes the second insert fail."""

    assertion_id = models.CharField(max_length=256, unique=True)
    issuer = models.CharField(max_length=1024)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "assertion ÉduConnect reçue"

    def __str__(self):
        return self.assertion_id


class FranceConnectLink(models.Model):
    """A parent's FranceConnect identity (the provider's `sub`) linked to his ENT account."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="franceconnect_links"
    )
    issuer = models.CharField(max_length=512)
    sub = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "liaison FranceConnect"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "sub"], name="franceconnect_sub_once"),
            models.UniqueConstraint(fields=["user", "issuer"], name="franceconnect_one_per_user"),
        ]

    def __str__(self):
        return f"{self.user_id} ↔ {self.sub}"
