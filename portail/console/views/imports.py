"""Import of a school's own CSV: upload, preview, confirm, report."""

import base64

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render

from .. import scoping, services
from ..forms import ImportForm
from .access import console_view

# --- Import of a school's own CSV: upload, preview, confirm, report ------------------------------

SESSION_IMPORT = "console_import"


def _run_import(request, pending, *, dry_run):
    structure = scoping.visible_structures(request.user).filter(pk=pending["structure"]).first()
    if structure is None:
        raise Http404
    return structure, services.import_school_file(
        request,
        base64.b64decode(pending["data"]),
        structure=structure,
        profile=pending["profile"],
        full=pending["full"],
        dry_run=dry_run,
    )


@console_view
def import_csv(request):
    from portail.directory.imports.report import ImportFileError

    if request.method == "POST" and request.POST.get("step") == "confirm":
        pending = request.session.pop(SESSION_IMPORT, None)
        if pending is None:
            messages.error(request, "Aucun import en attente : déposez de nouveau le fichier.")
            return redirect("console:import")
        structure, report = _run_import(request, pending, dry_run=False)
        classes = scoping.visible_classes(request.user).filter(
            structure=structure, name__in={c for a in report.created for c in a.classes}
        )
        return render(
            request,
            "console/import_report.html",
            {"report": report, "structure": structure, "classes": classes, "preview": False},
        )
    form = ImportForm(request.POST or None, request.FILES or None, actor=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        pending = {
            "data": base64.b64encode(data["file"].read()).decode(),
            "structure": data["structure"].pk,
            "profile": data["profile"],
            "full": data["full"],
        }
        try:
            structure, report = _run_import(request, pending, dry_run=True)
        except ImportFileError as exc:
            form.add_error("file", exc.message)
        else:
            # The file waits in the server-side session for the confirmation, nowhere else.
            request.session[SESSION_IMPORT] = pending
            return render(
                request,
                "console/import_report.html",
                {"report": report, "structure": structure, "preview": True, "pending": pending},
            )
    return render(request, "console/import.html", {"form": form})
