from django.conf import settings
from django.db import models
from django.utils import timezone


class CredentialsMail(models.Model):
    """One credentials mail queued for an account (activation/credentials.py).

    Links the queued OutgoingMail to its account: the 24-hour rule reads `created_at`, and the
    console shows « adresse refusée par le serveur de messagerie » when the relay refused the
    mail (the row failed with a 5xx). Kept as long as the mail row; the address is the mail's.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credentials_mails"
    )
    mail = models.ForeignKey(
        "mail.OutgoingMail", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="credentials_user_recent")]

    def __str__(self):
        return f"identifiants envoyés à {self.user_id} le {self.created_at:%Y-%m-%d %H:%M}"
