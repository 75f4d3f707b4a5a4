"""Portal login and logout, as single sign-on sees them (no edit to accounts/services.py)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from . import oidc_logout, services


@receiver(user_logged_in, dispatch_uid="portail.sso.password_typed")
def _password_typed(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        services.note_password_typed(request)


@receiver(user_logged_out, dispatch_uid="portail.sso.single_logout")
def _single_logout(sender, request, user, **kwargs):
    # Sent by django.contrib.auth.logout before the session is flushed: its tickets are readable.
    if request is not None and hasattr(request, "session"):
        services.single_logout(request.session)
        oidc_logout.end_oidc_sessions(request.session, user)
