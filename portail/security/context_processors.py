from django.conf import settings


def portail(request):
    return {
        "PORTAIL_BASE_URL": settings.PORTAIL_BASE_URL,
        "PORTAIL_DEV_MAILBOX": settings.DEBUG
        and settings.EMAIL_BACKEND == "portail.mail.backends.MailboxBackend",
    }
