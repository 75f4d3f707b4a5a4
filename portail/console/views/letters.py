"""Login letters: a selection, one generation, its PDF and CSV."""

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from portail.accounts.models import State

from .. import scoping, services
from ..forms import LettersForm
from ..letters import Letter, letters_csv, letters_pdf
from .access import console_view


def _letter(account, code):
    return Letter(
        first_name=account.first_name,
        last_name=account.last_name,
        classes=", ".join(c.name for c in account.classes.all()),
        structure=", ".join(s.name for s in account.structures.all()),
        identifier=account.identifier,
        code=code,
    )


def _download(content, content_type, filename):
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- Login letters and export --------------------------------------------------------------------


def _letters_selection(actor, data):
    # Neither blocked nor deactivated (leavers, merged accounts): their codes could never serve.
    accounts = scoping.visible_accounts(actor).exclude(state=State.BLOCKED)
    accounts = accounts.filter(deactivated_at__isnull=True)
    if data.get("school_class"):
        accounts = accounts.filter(classes=data["school_class"])
    if data.get("profile"):
        accounts = accounts.filter(profile=data["profile"])
    if data.get("only_pending"):
        accounts = accounts.filter(state=State.PENDING)
    return scoping.with_visible_memberships(actor, accounts).order_by(
        "last_name", "first_name", "pk"
    )


@console_view
def letters(request):
    data = request.POST if request.method == "POST" else request.GET
    form = LettersForm(data or None, actor=request.user)
    if not form.is_valid():
        return render(request, "console/letters.html", {"form": form})
    accounts = _letters_selection(request.user, form.cleaned_data)
    if request.method != "POST":
        return render(
            request,
            "console/letters_confirm.html",
            {
                "form": form,
                "total": accounts.count(),
                "pending": accounts.filter(state=State.PENDING).count(),
                "hidden": [(k, v) for k, values in request.GET.lists() for v in values],
            },
        )
    letters_ = [_letter(a, code) for a, code in services.issue_letters(request, list(accounts))]
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    if form.cleaned_data["output"] == "csv":
        return _download(
            letters_csv(letters_).encode(), "text/csv; charset=utf-8", f"fiches-{stamp}.csv"
        )
    pdf = letters_pdf(letters_, form.cleaned_data["per_page"])
    return _download(pdf, "application/pdf", f"fiches-{stamp}.pdf")
