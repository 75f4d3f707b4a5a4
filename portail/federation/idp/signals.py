"""Portal logout -> SAML single logout (front channel), beside CAS and OIDC (portail/sso/signals.py)."""

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from . import services

FRONT_CHANNEL_ATTRIBUTE = "_saml_front_channel"


@receiver(user_logged_out, dispatch_uid="portail.federation.idp.single_logout")
def _single_logout(sender, request, user, **kwargs):
    # Sent by django.contrib.auth.logout before the session is flushed: its key is still there.
    if request is None or not hasattr(request, "session"):
        return
    frames = services.front_channel_requests(request.session.session_key or "", user)
    if frames:
        # The browser carries them: middleware.py turns the logout's redirect into a page.
        setattr(request, FRONT_CHANNEL_ATTRIBUTE, frames)
