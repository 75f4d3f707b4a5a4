from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from .models import MailboxMessage


def _dev_only():
    if not (settings.DEBUG and settings.EMAIL_BACKEND == "portail.mail.backends.MailboxBackend"):
        raise Http404


def mailbox(request):
    _dev_only()
    return render(request, "mail/mailbox.html", {"messages_": MailboxMessage.objects.all()[:50]})


def message(request, pk):
    _dev_only()
    return render(request, "mail/message.html", {"m": get_object_or_404(MailboxMessage, pk=pk)})
