"""What throttling must remember across a cache restart: failures per account, used challenges."""

from django.conf import settings
from django.db import models


class LoginFailures(models.Model):
    """Failed logins of one account from one kind of device.

    `device` is "" for every untrusted device together (the CNIL lockout), or the device_key of a
    browser where the account logged in before (its failures are its own: nobody else's can
    lock the owner's known device out).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="login_failures"
    )
    device = models.CharField(max_length=64, blank=True, default="")
    # Failures since the last success: after PORTAIL_LOGIN_FAILURES_BEFORE_DELAY, delays grow.
    consecutive = models.PositiveIntegerField(default=0)
    # No attempt from these devices is checked before this time.
    locked_until = models.DateTimeField(null=True, blank=True)
    # Unix times of the failures of the last 24 hours (at most the daily cap): a sliding log.
    recent = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "device"], name="login_failures_per_device")
        ]

    def __str__(self):
        return f"{self.user_id}:{self.device or 'untrusted'}:{self.consecutive}"


class UsedChallenge(models.Model):
    """A solved proof-of-work challenge, kept until it expires so that it serves only once."""

    signature = models.CharField(max_length=128, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return self.signature[:12]
