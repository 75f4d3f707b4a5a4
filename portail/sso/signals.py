"""Portal login and logout, as single sign-on sees them (no edit to accounts/services.py)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from portail.accounts.models import State, User

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


# Blocking an account or changing its password (both rotate session_stamp) ends every portal
# session; here it also ends what single sign-on handed out: OIDC tokens and codes, CAS tickets.
_WATCHED = {"session_stamp", "state"}


@receiver(pre_save, sender=User, dispatch_uid="portail.sso.before_user_save")
def _remember_stamp(sender, instance, update_fields=None, **kwargs):
    if instance.pk is None or (update_fields is not None and not _WATCHED & set(update_fields)):
        return
    instance._sso_before = (
        User.objects.filter(pk=instance.pk).values_list("session_stamp", "state").first()
    )


@receiver(post_save, sender=User, dispatch_uid="portail.sso.after_user_save")
def _end_single_sign_on(sender, instance, **kwargs):
    before = getattr(instance, "_sso_before", None)
    instance._sso_before = None
    if before is None:
        return
    stamp, state = before
    if stamp != instance.session_stamp or (
        state == State.ACTIVE and instance.state != State.ACTIVE
    ):
        services.revoke_everything(instance)
