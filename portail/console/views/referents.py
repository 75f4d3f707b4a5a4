"""Référents ENT: the regional administrator names and dismisses them."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from portail.accounts.services import DomainError
from portail.directory.models import Function, Structure

from .. import scoping, services
from ..forms import ReferentSearchForm, StructureSearchForm
from .access import PAGE_SIZE, regional_view

# --- Référents ENT: the regional administrator names and dismisses them ------------------------

CANDIDATES_SHOWN = 20


def _referents_of(structures):
    return structures.prefetch_related(
        Prefetch(
            "functions",
            queryset=Function.objects.filter(role=Function.Role.REFERENT)
            .select_related("user")
            .order_by("user__last_name", "user__first_name"),
            to_attr="referent_functions",
        )
    )


@regional_view
def referents(request):
    form = StructureSearchForm(request.GET or None)
    structures = Structure.objects.order_by("name", "uai")
    if form.is_valid():
        for word in form.cleaned_data["q"].split():
            structures = structures.filter(Q(name__icontains=word) | Q(uai__iexact=word))
    page = Paginator(_referents_of(structures), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request, "console/referents.html", {"form": form, "page": page, "query": query.urlencode()}
    )


def _get_structure(pk):
    structure = _referents_of(Structure.objects.filter(pk=pk)).first()
    if structure is None:
        raise Http404
    return structure


@regional_view
def structure_referents(request, structure_pk):
    structure = _get_structure(structure_pk)
    form = ReferentSearchForm(request.GET or None)
    candidates = services.referent_candidates(structure)
    if form.is_valid():
        for word in form.cleaned_data["q"].split():
            candidates = candidates.filter(
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(identifier__icontains=word)
            )
    candidates = list(candidates.order_by("last_name", "first_name", "pk")[: CANDIDATES_SHOWN + 1])
    return render(
        request,
        "console/structure_referents.html",
        {
            "structure": structure,
            "form": form,
            "candidates": candidates[:CANDIDATES_SHOWN],
            "more": len(candidates) > CANDIDATES_SHOWN,
        },
    )


def _referent_action(request, structure_pk, pk, *, appoint):
    structure = _get_structure(structure_pk)
    if appoint:  # one of the accounts he sees (all the structures' members), checked again below
        target = scoping.get_visible_account(request.user, pk)
    else:  # a référent of this structure, even one who is not a member of it
        target = next((f.user for f in structure.referent_functions if f.user_id == pk), None)
        if target is None:
            raise Http404
    back = reverse("console:structure_referents", kwargs={"structure_pk": structure.pk})
    if request.method == "POST":
        operation = services.appoint_referent if appoint else services.dismiss_referent
        try:
            operation(request, structure, target)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                f"{target.display_name} est référent ENT de {structure.name}."
                if appoint
                else f"{target.display_name} n’est plus référent ENT de {structure.name}.",
            )
        return redirect(back)
    spec = (
        {
            "title": "Nommer un référent ENT",
            "explain": f"Ce compte deviendra référent ENT de {structure.name} ({structure.uai}) : "
            "il verra et gérera les comptes de l’établissement depuis la console, après avoir "
            "enregistré une application d’authentification.",
            "button": "Nommer référent",
        }
        if appoint
        else {
            "title": "Retirer un référent ENT",
            "explain": f"Ce compte ne sera plus référent ENT de {structure.name} "
            f"({structure.uai}) : il perd aussitôt l’accès aux comptes de l’établissement.",
            "button": "Retirer",
            "danger": True,
        }
    )
    return render(request, "console/confirm.html", {"account": target, "cancel_url": back, **spec})


@regional_view
def appoint_referent(request, structure_pk, pk):
    return _referent_action(request, structure_pk, pk, appoint=True)


@regional_view
def dismiss_referent(request, structure_pk, pk):
    return _referent_action(request, structure_pk, pk, appoint=False)
