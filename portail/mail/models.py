from django.db import models
from django.utils import timezone


class OutgoingMail(models.Model):
    """A rendered email waiting for (or past) delivery: written in the same transaction as the
    change that caused it, so a mail is never lost to an SMTP hiccup, and retried until sent.

    Bodies carry live links (reset tokens): they are stored sealed (portail.security.sealing) and
    erased once sent; subject and recipient stay for the trail.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "à envoyer"
        SENT = "sent", "envoyé"
        FAILED = "failed", "en échec"  # retry budget spent: shown to operators, requeued by hand

    to = models.EmailField()
    subject = models.CharField(max_length=255)
    sealed_text = models.TextField(blank=True)
    sealed_html = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Set once at enqueue and on every attempt, so a resend after an unclear answer is the same
    # message (RFC 5322 §3.6.4), which the receiving side can recognise.
    message_id = models.CharField(max_length=255, blank=True)
    # The lease of the worker sending it (portail/mail/queue.py): free again once it expires.
    reserved_by = models.CharField(max_length=80, blank=True)
    reserved_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return f"{self.subject} → {self.to}"

    @property
    def text(self) -> str:
        return self._unseal(self.sealed_text)

    @property
    def html(self) -> str:
        return self._unseal(self.sealed_html)

    @staticmethod
    def _unseal(sealed: str) -> str:
        from portail.mail.services import SEAL_PURPOSE
        from portail.security.sealing import unseal

        return unseal(SEAL_PURPOSE, sealed)


class MailboxMessage(models.Model):
    """The dev mailbox (embedded default, no EMAIL_URL): what would have been sent."""

    to = models.CharField(max_length=1000)
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self):
        return f"{self.subject} → {self.to}"
