"""send_template(): render a French message from its three templates and queue it durably.

The row is written inside the caller's transaction. At its commit the mail workers are woken
(`portail send-mail --loop`, see portail/mail/queue.py); a request never waits on the SMTP relay.
A local backend (the dev mailbox, locmem) is delivered in-process at commit instead.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.template import Context
from django.template.loader import get_template, render_to_string

from portail.security import sealing

from .models import OutgoingMail
from .queue import SEAL_PURPOSE, Worker, is_local_backend, new_message_id, wake_workers

__all__ = ["SEAL_PURPOSE", "deliver", "deliver_due", "send_template"]

log = logging.getLogger(__name__)


def send_template(name: str, to: str, context: dict, *, deliver_now: bool | None = None) -> int:
    """Templates mail/<name>.subject.txt, .txt and .html; `context` holds plain values only.

    `deliver_now` (default PORTAIL_MAIL_DELIVER_ON_COMMIT): wake the workers at commit, and with a
    local backend deliver in-process. False: only queue; the workers find it by polling, and the
    request does exactly the same work whatever happens to the mail (neutral recovery answers).
    """
    if deliver_now is None:
        deliver_now = settings.PORTAIL_MAIL_DELIVER_ON_COMMIT
    context = {"base_url": settings.PORTAIL_BASE_URL, **context}
    subject = " ".join(_render_plain(f"mail/{name}.subject.txt", context).split())
    mail = OutgoingMail.objects.create(
        to=to,
        subject=subject,
        sealed_text=sealing.seal(SEAL_PURPOSE, _render_plain(f"mail/{name}.txt", context)),
        sealed_html=sealing.seal(SEAL_PURPOSE, render_to_string(f"mail/{name}.html", context)),
        message_id=new_message_id(),
    )
    if deliver_now:
        if is_local_backend():
            transaction.on_commit(lambda: deliver(mail.pk))
        else:
            wake_workers()  # NOTIFY, delivered by PostgreSQL when the transaction commits
    return mail.pk


def _render_plain(template_name: str, context: dict) -> str:
    """Plain-text parts are not HTML: no escaping ("O'Connor", not "O&#x27;Connor")."""
    template = get_template(template_name).template  # the Django engine's own Template
    return template.render(Context(context, autoescape=False))


def deliver(mail_id: int) -> bool:
    """Send this one mail now if it is due and free (reserved like any worker would)."""
    try:
        return Worker(batch_size=1).drain(ids=[mail_id]) == 1
    except Exception as exc:  # after the commit: a failure here must not become the user's 500
        log.warning("mail %s: in-process delivery failed: %s", mail_id, type(exc).__name__)
        return False


def deliver_due(limit: int | None = 100) -> int:
    """One pass of a worker over what is due now; the number of mails sent."""
    return Worker().drain(limit=limit)
