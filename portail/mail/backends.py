from django.core.mail.backends.base import BaseEmailBackend


class MailboxBackend(BaseEmailBackend):
    """Development mailbox: messages are stored and read in the browser at /dev/mailbox/."""

    def send_messages(self, email_messages):
        from .models import MailboxMessage

        for message in email_messages:
            html = next(
                (c for c, mime in getattr(message, "alternatives", []) if mime == "text/html"), ""
            )
            MailboxMessage.objects.create(
                to=", ".join(message.to),
                subject=message.subject,
                body_text=message.body,
                body_html=html,
            )
        return len(email_messages)
