"""Login and logout, as « Mon compte » sees them (no edit to accounts/services.py)."""

import logging

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from . import notices, sessions

log = logging.getLogger(__name__)


@receiver(user_logged_in, dispatch_uid="portail.profile.index_session")
def _logged_in(sender, request, user, **kwargs):
    if request is None or not hasattr(request, "session"):
        return
    sessions.index_session(request, user)
    notices.notify_new_device(request, user)


@receiver(user_logged_out, dispatch_uid="portail.profile.forget_session")
def _logged_out(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        sessions.forget_session(request.session.session_key)
