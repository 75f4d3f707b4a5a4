"""« Nouvelle connexion à votre compte ENT »: a mail when an account logs in from a new device.

OWASP ASVS 5.0 §V6.3.5: users are notified of suspicious authentication attempts (here a
successful login from a browser that never logged in to this account). A new device is one
without this account in its device cookie (portail.security.devices). No mail for the first
login ever nor for an activation (the letter's code proved the owner on that device), nor for
an account without an address. Through the durable mail queue, after the login commits.
"""

from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import formats, timezone

from portail.audit.models import Event
from portail.audit.services import record
from portail.mail.services import send_template
from portail.security import devices

from .devices import describe

NOTIFIED = "account.new_device.notified"


def _during_activation(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and match.namespace == "activation")


def _over_daily_limit(user) -> bool:
    # Counted in the audit trail (database): shared by every node, survives a Redis restart.
    since = timezone.now() - timedelta(days=1)
    sent = Event.objects.filter(target=user, tag=NOTIFIED, at__gte=since).count()
    return sent >= settings.PORTAIL_NEW_DEVICE_MAILS_PER_DAY


def notify_new_device(request, user) -> bool:
    """Called at login, before the login's own audit event is written. True if a mail left."""
    if not user.email or devices.is_known_device(request, user) or _during_activation(request):
        return False
    if not Event.objects.filter(target=user, tag="account.login").exists():
        return False  # the first login ever: nothing to compare with
    device = describe(request.META.get("HTTP_USER_AGENT", ""))
    place = getattr(request, "school_network", "") or ""
    if _over_daily_limit(user):
        record("account.new_device.not_notified", request=request, target=user, reason="limit")
        return False
    when = timezone.localtime()
    send_template(
        "account_new_device",
        user.email,
        {
            "first_name": user.first_name,
            "identifier": user.identifier,
            "date": formats.date_format(when, "l j F Y"),
            "time": when.strftime("%H h %M"),
            "device": device,
            "place": place,
            "help_url": settings.PORTAIL_BASE_URL + reverse("recovery:help"),
            "account_url": settings.PORTAIL_BASE_URL + reverse("account:account"),
        },
    )
    record(NOTIFIED, request=request, target=user, device=device)
    return True
