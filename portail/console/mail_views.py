"""« Courriels en échec »: the mails the queue gave up on, for a regional administrator to requeue.

One page: the list; `?renvoyer=<id>` shows the confirmation; the POST requeues and is audited.
Recipients are masked as everywhere in the console; no body is shown.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from portail.audit.services import record
from portail.mail.models import OutgoingMail
from portail.mail.queue import requeue_failed

from .views import PAGE_SIZE, mask_email, regional_view


def _failed():
    return OutgoingMail.objects.filter(status=OutgoingMail.Status.FAILED).order_by("-pk")


def _row(mail):
    return {
        "pk": mail.pk,
        "to": mask_email(mail.to),
        "subject": mail.subject,
        "created_at": mail.created_at,
        "attempts": mail.attempts,
        "last_error": mail.last_error,
    }


def _requested_pk(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@regional_view
def failed_mails(request):
    if request.method == "POST":
        pk = _requested_pk(request.POST.get("courriel"))
        if pk is not None and requeue_failed(ids=[pk]):
            record("console.mail.requeued", request=request, mail=pk)
            messages.success(request, "Le courriel est remis dans la file d’envoi.")
        else:
            messages.error(request, "Ce courriel n’est plus en échec : rien n’a été renvoyé.")
        return redirect("console:failed_mails")
    confirm = None
    if (pk := _requested_pk(request.GET.get("renvoyer"))) is not None:
        confirm = _failed().filter(pk=pk).first()
    page = Paginator(_failed(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "console/failed_mails.html",
        {
            "page": page,
            "rows": [_row(m) for m in page],
            "confirm": _row(confirm) if confirm else None,
            "query": "",
        },
    )
