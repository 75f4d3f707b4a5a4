"""A FranceConnect identity pending in the session is linked when its parent logs in."""

from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.db import IntegrityError, transaction
from django.dispatch import receiver

from portail.accounts.models import Profile
from portail.audit.services import record

from .hooks import PENDING_LINK, STATE, pending_link
from .models import FranceConnectLink


@receiver(user_logged_in)
def complete_pending_link(sender, request, user, **kwargs):
    if request is None or not hasattr(request, "session"):
        return
    pending = pending_link(request)
    request.session.pop(PENDING_LINK, None)
    if pending is None or user.profile != Profile.PARENT:
        return
    try:
        with transaction.atomic():
            FranceConnectLink.objects.filter(user=user, issuer=pending["issuer"]).delete()
            FranceConnectLink.objects.create(
                user=user, issuer=pending["issuer"], sub=pending["sub"]
            )
            record("federation.franceconnect.linked", request=request, target=user)
        if pending.get("id_token"):
            # The person came through FranceConnect: this session's logout ends FranceConnect's
            # too (hooks.federated_logout_url), as after a login straight through; else the
            # next person at a shared computer would be let in by FranceConnect's open session.
            request.session[STATE] = {"method": "franceconnect", "id_token": pending["id_token"]}
        messages.success(
            request,
            "Votre identité FranceConnect est maintenant liée à votre compte ENT : la prochaine "
            "fois, « S’identifier avec FranceConnect » suffira.",
            fail_silently=True,
        )
    except IntegrityError:
        # The identity was linked to another account meanwhile: nothing changes here.
        record("federation.franceconnect.link_conflict", request=request, target=user)
