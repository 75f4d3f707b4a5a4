"""The second factor of the console: one TOTP device per person and its recovery codes."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class TOTPDevice(models.Model):
    """An authenticator app's shared secret (RFC 6238), stored encrypted (see otp.py)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device"
    )
    encrypted_secret = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    # Set when the person proved the app works by typing a first code; until then the secret may
    # be shown again on the enrolment page, after it never.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # RFC 6238 §5.2: a verifier must not accept the same code twice; the last accepted time step.
    last_used_step = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "application d'authentification"

    def __str__(self):
        return f"TOTP de {self.user_id}"


class RecoveryCode(models.Model):
    """A single-use code for the day the phone is lost; stored only as its keyed digest."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_recovery_codes"
    )
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "code de secours"

    def __str__(self):
        return f"code de secours de {self.user_id}"


class IgnoredDuplicate(models.Model):
    """A pair of accounts a référent looked at and declared two different people."""

    first = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    ignored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "doublon écarté"
        constraints = [
            models.UniqueConstraint(fields=["first", "second"], name="unique_ignored_pair"),
            # One row per pair, in one order.
            models.CheckConstraint(
                condition=models.Q(first__lt=models.F("second")), name="ignored_pair_ordered"
            ),
        ]

    def __str__(self):
        return f"{self.first_id} ≠ {self.second_id}"
