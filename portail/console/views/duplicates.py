"""Possible duplicates: set aside, or merge."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portail.accounts.services import DomainError

from .. import scoping, services
from ..forms import MergeForm
from .access import console_view

# --- Possible duplicates ---------------------------------------------------------------------------


@console_view
def duplicates(request):
    # A merged (or departed) account is no longer a duplicate of anyone.
    accounts = scoping.visible_accounts(request.user).filter(deactivated_at__isnull=True)
    pairs = services.possible_duplicates(accounts)
    return render(request, "console/duplicates.html", {"pairs": pairs})


@console_view
@require_POST
def ignore_duplicate(request, pk, other_pk):
    first = scoping.get_visible_account(request.user, pk)
    second = scoping.get_visible_account(request.user, other_pk)
    services.ignore_duplicate(request, first, second)
    messages.success(request, "Les deux comptes sont notés comme deux personnes différentes.")
    return redirect("console:duplicates")


@console_view
def merge_duplicate(request, pk, other_pk):
    pair = (
        scoping.get_visible_account(request.user, pk),
        scoping.get_visible_account(request.user, other_pk),
    )
    form = MergeForm(request.POST or None, pair=pair)
    if request.method == "POST" and form.is_valid():
        kept = next(a for a in pair if a.pk == form.cleaned_data["keep"])
        folded = next(a for a in pair if a.pk != kept.pk)
        try:
            services.merge_accounts(request, kept, folded)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("console:duplicates")
        messages.success(
            request,
            f"Les comptes sont fusionnés : {kept.identifier} est conservé, "
            f"{folded.identifier} est désactivé.",
        )
        return redirect("console:account", pk=kept.pk)
    return render(request, "console/merge.html", {"form": form, "pair": pair})
