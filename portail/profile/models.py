"""The per-account index of open sessions.

Sessions are stored under a keyed hash of their key (portail.security.sessions), so nothing
can list "the sessions of Léa" from the session table. This index can: one row per open
session, named by the same digest (never the cookie's value), with what « Mon compte » shows
(when it opened, the device, the school network). It lives in the database, whatever the
session engine: the Redis-cached engine writes through to the database, Redis may vanish at any
moment, and the index with it would not.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class OpenSession(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="open_sessions"
    )
    # portail.security.sessions.stored_session_key(session key): the django_session row's name.
    stored_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The browser's User-Agent header, truncated (as the audit log keeps it); shown summarised.
    user_agent = models.CharField(max_length=512, blank=True)
    # The declared school network the login came from (PORTAIL_SCHOOL_NETWORKS), or "".
    network = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "session ouverte"
        verbose_name_plural = "sessions ouvertes"

    def __str__(self):
        return f"{self.user_id} depuis {self.created_at:%Y-%m-%d %H:%M}"
