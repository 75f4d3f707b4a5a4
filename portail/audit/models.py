from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    pass


class Event(models.Model):
    """One thing that happened to an account. Written once, never changed or deleted by the app.

    The account is referenced without a database constraint, so the trail outlives the account
    (leavers' personal data is deleted, the fact that someone logged in on a date is not).
    """

    tag = models.CharField(max_length=64)  # e.g. "account.password.reset"
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    target = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # led by the (target, at) index below
        related_name="audit_events",
    )
    # What was typed when no account matched (folded identifier or address), for the trail.
    subject = models.CharField(max_length=254, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    data = models.JSONField(default=dict, blank=True)  # before/after values; never a secret

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "événement"
        # The console reads newest first, a page at a time from a (at, id) cursor, for the whole
        # log, the accounts of a school, one account's trail, or one action.
        # On PostgreSQL the table is partitioned by month (partitions.py; migration 0004).
        indexes = [
            models.Index(fields=["-at", "-id"], name="audit_event_at_id"),
            # Tag second: a filtered trail is found in the index, not by reading every row.
            models.Index(fields=["target", "tag", "-at", "-id"], name="audit_event_target_tag_at"),
            models.Index(fields=["tag", "-at", "-id"], name="audit_event_tag_at"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.tag} {self.subject}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events are append-only")
