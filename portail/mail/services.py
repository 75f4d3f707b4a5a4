"""send_template(): render a French message from its three templates and queue it durably.

The row is written inside the caller's transaction; delivery is tried once the transaction
commits, and `portail send-mail` retries whatever could not be sent (with backoff).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template import Context
from django.template.loader import get_template, render_to_string
from django.utils import timezone

from portail.security import sealing

from .models import OutgoingMail

SEAL_PURPOSE = "mail.body"

log = logging.getLogger(__name__)


def send_template(name: str, to: str, context: dict, *, deliver_now: bool = True) -> int:
    """Templates mail/<name>.subject.txt, .txt and .html; `context` holds plain values only."""
    context = {"base_url": settings.PORTAIL_BASE_URL, **context}
    subject = " ".join(_render_plain(f"mail/{name}.subject.txt", context).split())
    mail = OutgoingMail.objects.create(
        to=to,
        subject=subject,
        sealed_text=sealing.seal(SEAL_PURPOSE, _render_plain(f"mail/{name}.txt", context)),
        sealed_html=sealing.seal(SEAL_PURPOSE, render_to_string(f"mail/{name}.html", context)),
    )
    if deliver_now and settings.PORTAIL_MAIL_DELIVER_ON_COMMIT:  # False: the workers send it
        transaction.on_commit(lambda: deliver(mail.pk))
    return mail.pk


def _render_plain(template_name: str, context: dict) -> str:
    """Plain-text parts are not HTML: no escaping ("O'Connor", not "O&#x27;Connor")."""
    template = get_template(template_name).template  # the Django engine's own Template
    return template.render(Context(context, autoescape=False))


def deliver(mail_id: int) -> bool:
    mail = OutgoingMail.objects.filter(pk=mail_id, status=OutgoingMail.Status.PENDING).first()
    if mail is None:
        return False
    mail.attempts += 1
    try:
        message = EmailMultiAlternatives(
            mail.subject,
            sealing.unseal(SEAL_PURPOSE, mail.sealed_text),
            settings.DEFAULT_FROM_EMAIL,
            [mail.to],
        )
        if html := sealing.unseal(SEAL_PURPOSE, mail.sealed_html):
            message.attach_alternative(html, "text/html")
        message.send()
    except Exception as exc:  # transport failure or unreadable body: keep the mail, retry later
        log.warning("mail %s not sent (attempt %s): %s", mail.pk, mail.attempts, type(exc).__name__)
        mail.last_error = f"{type(exc).__name__}: {exc}"[:255]
        if mail.attempts >= settings.PORTAIL_MAIL_MAX_ATTEMPTS:
            mail.status = OutgoingMail.Status.FAILED
        # Exponential backoff: 1, 2, 4, … minutes.
        mail.next_attempt_at = timezone.now() + timedelta(minutes=2 ** (mail.attempts - 1))
        mail.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
        return False
    mail.status = OutgoingMail.Status.SENT
    mail.sent_at = timezone.now()
    mail.sealed_text = mail.sealed_html = ""  # sent: the links in it are no business of ours
    mail.save(update_fields=["attempts", "status", "sent_at", "sealed_text", "sealed_html"])
    return True


def deliver_due(limit: int = 100) -> int:
    due = OutgoingMail.objects.filter(
        status=OutgoingMail.Status.PENDING, next_attempt_at__lte=timezone.now()
    ).values_list("pk", flat=True)[:limit]
    return sum(deliver(pk) for pk in list(due))
