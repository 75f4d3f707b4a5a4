"""Login letters: a selection, ONE generation, then its PDF and its CSV.

Codes are stored only hashed (accounts.Token), so a letter's code exists in clear once: when it
is generated. One generation (a « lot ») is therefore kept, sealed (AES-256-GCM with a key
derived from SECRET_KEY and bound to this purpose, portail.security.sealing), in the référent's
server-side session for BATCH_MINUTES: the PDF (at 1, 2 or 8 per page) and the CSV of that lot
are made from it, any number of times, without issuing new codes. It goes when it expires, when
the référent clears it, when a new lot replaces it, or with the session (logout). A database
dump of the sessions shows no usable code.
"""

import json
import secrets
import time

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portail.accounts.models import State
from portail.security.sealing import Unreadable, seal, unseal

from .. import scoping, services
from ..forms import LettersDownloadForm, LettersForm
from ..journal import class_name
from ..letters import Letter, letters_csv, letters_pdf
from .access import console_view

SESSION_BATCH = "console_letters"
SEAL_PURPOSE = "console.letters.batch"
BATCH_MINUTES = 15  # long enough to print and export, short enough not to keep codes around


def _letter(account, code):
    return Letter(
        first_name=account.first_name,
        last_name=account.last_name,
        classes=", ".join(class_name(c.name) for c in account.classes.all()),
        structure=", ".join(s.name for s in account.structures.all()),
        identifier=account.identifier,
        code=code,
    )


def _download(content, content_type, filename):
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


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


def keep_batch(request, letters_, per_page) -> str:
    """Seal one generation's letters into the session; returns the lot's id."""
    batch = secrets.token_urlsafe(12)
    request.session[SESSION_BATCH] = {
        "id": batch,
        "expires": time.time() + BATCH_MINUTES * 60,
        "per_page": per_page,
        "count": len(letters_),
        "codes": sum(1 for letter in letters_ if letter.code),
        "made": timezone.localtime().strftime("%Y%m%d-%H%M"),
        "sealed": seal(SEAL_PURPOSE, json.dumps([letter.as_dict() for letter in letters_])),
    }
    return batch


def _batch(request, batch_id=None):
    """The session's lot (the one named, if given) while it lasts, else None."""
    batch = request.session.get(SESSION_BATCH)
    if not batch or (batch_id is not None and batch["id"] != batch_id):
        return None
    if batch["expires"] < time.time():
        request.session.pop(SESSION_BATCH, None)
        return None
    return batch


def _batch_letters(batch) -> list[Letter]:
    return [Letter(**row) for row in json.loads(unseal(SEAL_PURPOSE, batch["sealed"]))]


@console_view
def letters(request):
    data = request.POST if request.method == "POST" else request.GET
    form = LettersForm(data or None, actor=request.user)
    if not form.is_valid():
        return render(
            request,
            "console/letters.html",
            {"form": form, "batch": _batch(request), "invalid": bool(data)},
            status=400 if data else 200,
        )
    accounts = _letters_selection(request.user, form.cleaned_data)
    renew = form.cleaned_data["renew"]
    if request.method != "POST":
        pending = accounts.filter(state=State.PENDING)
        with_code = len(services.accounts_with_a_code(pending.values("pk")))
        pending_count = pending.count()
        total = accounts.count()
        return render(
            request,
            "console/letters_confirm.html",
            {
                "form": form,
                "total": total if renew else total - with_code,
                "active": total - pending_count,
                "new_codes": pending_count if renew else pending_count - with_code,
                "with_code": with_code,
                "renew": renew,
                "hidden": [(k, v) for k, values in request.GET.lists() for v in values],
            },
        )
    issued = services.issue_letters(request, list(accounts), renew=renew)
    keep_batch(request, [_letter(a, code) for a, code in issued], form.cleaned_data["per_page"])
    return redirect("console:letters_ready")


@console_view
def letters_ready(request):
    """The lot just generated: its PDF and its CSV, the same codes."""
    batch = _batch(request)
    if batch is None:
        messages.error(
            request,
            f"Ces fiches ne sont plus disponibles (elles sont effacées après {BATCH_MINUTES}\u00a0"
            "minutes)\u00a0: générez-les de nouveau.",
        )
        return redirect("console:letters")
    form = LettersDownloadForm(initial={"batch": batch["id"], "per_page": batch["per_page"]})
    minutes_left = max(1, int((batch["expires"] - time.time()) // 60))
    return render(
        request,
        "console/letters_ready.html",
        {"batch": batch, "form": form, "minutes_left": minutes_left},
    )


@console_view
@require_POST
def letters_download(request):
    form = LettersDownloadForm(request.POST)
    batch = _batch(request, request.POST.get("batch"))
    if request.POST.get("clear"):
        request.session.pop(SESSION_BATCH, None)
        messages.success(request, "Les codes de ces fiches sont effacés du serveur.")
        return redirect("console:letters")
    if batch is None or not form.is_valid():
        messages.error(
            request,
            "Ces fiches ne sont plus disponibles\u00a0: générez-les de nouveau "
            "(les codes déjà imprimés restent valables).",
        )
        return redirect("console:letters")
    try:
        letters_ = _batch_letters(batch)
    except Unreadable:  # SECRET_KEY changed since
        request.session.pop(SESSION_BATCH, None)
        messages.error(request, "Ces fiches ne sont plus lisibles\u00a0: générez-les de nouveau.")
        return redirect("console:letters")
    stamp = batch["made"]
    if form.cleaned_data["output"] == "csv":
        return _download(
            letters_csv(letters_).encode(), "text/csv; charset=utf-8", f"fiches-{stamp}.csv"
        )
    pdf = letters_pdf(letters_, form.cleaned_data["per_page"])
    return _download(pdf, "application/pdf", f"fiches-{stamp}.pdf")
