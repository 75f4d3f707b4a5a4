"""Import of a school's own CSV: upload, preview, confirm, report."""

import base64

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render

from portail.accounts.models import Profile

from .. import scoping, services
from ..forms import ImportForm
from ..journal import class_name
from ..letters import Letter
from .access import console_view
from .letters import keep_batch

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
            messages.error(request, "Aucun import en attente : déposez de nouveau le fichier.")
            return redirect("console:import")
        structure, report = _run_import(request, pending, dry_run=False)
        classes = scoping.visible_classes(request.user).filter(
            structure=structure, name__in={c for a in report.created for c in a.classes}
        )
        # The new accounts' codes exist in clear now only: their letters become a lot at once
        # (PDF and CSV of the same codes), as the letters page makes one.
        new_letters = [
            Letter(
                first_name=a.first_name,
                last_name=a.last_name,
                classes=", ".join(class_name(c) for c in a.classes),
                structure=structure.name,
                identifier=a.identifier,
                code=a.activation_code or None,
            )
            for a in report.created
            if a.user_id is not None and a.activation_code
        ]
        if new_letters:
            keep_batch(request, new_letters, 8)
        return render(
            request,
            "console/import_report.html",
            {
                "report": report,
                "structure": structure,
                "classes": classes,
                "preview": False,
                "new_letters": len(new_letters),
            },
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
            counts = report.counts()
            changes = any(counts[k] for k in counts if k not in ("unchanged", "rejected"))
            if changes:
                # The file waits in the server-side session for the confirmation, nowhere else.
                request.session[SESSION_IMPORT] = pending
            else:  # every row rejected, or nothing new: nothing to confirm
                request.session.pop(SESSION_IMPORT, None)
            return render(
                request,
                "console/import_report.html",
                {
                    "report": report,
                    "structure": structure,
                    "preview": True,
                    "pending": pending,
                    "changes": changes,
                },
            )
    return render(
        request,
        "console/import.html",
        {"form": form, "profiles": Profile.choices},
    )


@console_view
def import_template(request, profile):
    """The CSV template of one profile, to fill in a spreadsheet and import."""
    from portail.directory.imports.region_csv import TEMPLATES, template_csv

    if profile not in TEMPLATES:
        raise Http404
    response = HttpResponse(template_csv(profile), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="modele-{profile}.csv"'
    return response
