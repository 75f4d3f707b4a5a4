"""Search, the account page, and the actions on one account (each GET shows what will happen,
each POST does it)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portail.accounts.models import State, User
from portail.accounts.services import DomainError, usable_activation_token
from portail.activation import credentials
from portail.directory.models import Relationship
from portail.security import ratelimit
from portail.security.views import rate_limited

from .. import scoping, services
from ..forms import IdentifierForm, LetterCodeForm, LinkForm, NamesForm, SearchForm
from ..journal import event_rows
from ..letters import letters_pdf
from .access import PAGE_SIZE, console_view
from .letters import _download, _letter

# --- Search and account page --------------------------------------------------------------------


def _search(actor, data):
    accounts = scoping.with_visible_memberships(actor, scoping.visible_accounts(actor))
    for word in data.get("q", "").split():
        accounts = accounts.filter(
            Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(identifier__icontains=word)
            | Q(external_id=word)
        )
    if data.get("profile"):
        accounts = accounts.filter(profile=data["profile"])
    if data.get("school_class"):
        accounts = accounts.filter(classes=data["school_class"])
    state = data.get("state")
    if state == "leaving":
        accounts = accounts.filter(leaving_since__isnull=False)
    elif state:
        accounts = accounts.filter(state=state)
    return accounts.order_by("last_name", "first_name", "pk")


@console_view
def search(request):
    form = SearchForm(request.GET or None, actor=request.user)
    accounts = _search(request.user, form.cleaned_data if form.is_valid() else {})
    page = Paginator(accounts, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/search.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "structures": scoping.visible_structures(request.user),
        },
    )


def mask_email(address: str) -> str:
    """j•••@e•••.org: enough to recognise one's own address, not to read it."""
    if not address or "@" not in address:
        return ""
    local, _, domain = address.rpartition("@")
    name, dot, tld = domain.rpartition(".")
    if not dot:
        name, tld = domain, ""
    return f"{local[:1]}•••@{name[:1]}•••" + (f".{tld}" if tld else "")


def _account_page(request, target, *, status=200, **forms):
    """The account page; `forms` are bound forms sent back with their errors (what was typed
    stays in the field, the error tied to it)."""
    visible = scoping.visible_accounts(request.user)
    children = User.objects.filter(parent_links__parent=target)
    parents = User.objects.filter(child_links__child=target)
    events = scoping.visible_events(request.user).filter(target=target).select_related("actor")
    context = {
        "account": target,
        "masked_email": mask_email(target.email),
        "masked_contact_email": mask_email(target.contact_email),
        "credentials_refused": credentials.address_refused(target),
        "children": children,
        "parents": parents,
        "visible_ids": set(
            visible.filter(pk__in=[u.pk for u in (*children, *parents)]).values_list(
                "pk", flat=True
            )
        ),
        "rows": event_rows(events[:100]),
        "identifier_form": IdentifierForm(initial={"identifier": target.identifier}),
        "names_form": NamesForm(
            initial={"first_name": target.first_name, "last_name": target.last_name}
        ),
        "link_form": LinkForm(),
        "State": State,
    }
    context.update(forms)
    return render(request, "console/account.html", context, status=status)


@console_view
def account(request, pk):
    return _account_page(request, scoping.get_visible_account(request.user, pk))


# --- Actions: each GET shows what will happen, each POST does it ------------------------------


ACTIONS = {
    "block": {
        "title": "Bloquer le compte",
        "explain": "Le compte ne pourra plus se connecter et toutes ses sessions ouvertes se "
        "terminent immédiatement. À la connexion, il verra : « L'administrateur de votre "
        "établissement a bloqué votre accès à l’ENT. Veuillez le contacter. »",
        "button": "Bloquer le compte",
        "danger": True,
        "operation": services.block_account,
        "done": "Le compte est bloqué.",
    },
    "unblock": {
        "title": "Débloquer le compte",
        "explain": "Le compte pourra de nouveau se connecter.",
        "button": "Débloquer",
        "operation": services.unblock_account,
        "done": "Le compte est débloqué.",
    },
    "reset": {
        "title": "Envoyer un lien de réinitialisation",
        "explain": "Un courriel contenant un lien pour choisir un nouveau mot de passe est envoyé "
        "à l’adresse de messagerie du compte. Vous ne voyez ni ne choisissez le mot de passe.",
        "button": "Envoyer",
        "operation": services.send_reset_link,
        "done": "Le lien de réinitialisation a été envoyé.",
    },
}


def _action(request, pk, name):
    target = scoping.get_visible_account(request.user, pk)
    spec = ACTIONS[name]
    if request.method == "POST":
        try:
            spec["operation"](request, target)
        except ratelimit.RateLimited as exc:
            return rate_limited(request, exc)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, spec["done"])
        return redirect("console:account", pk=target.pk)
    return render(request, "console/confirm.html", {"account": target, **spec})


@console_view
def block(request, pk):
    return _action(request, pk, "block")


@console_view
def unblock(request, pk):
    return _action(request, pk, "unblock")


@console_view
def send_reset(request, pk):
    return _action(request, pk, "reset")


@console_view
def new_code(request, pk):
    target = scoping.get_visible_account(request.user, pk)
    if request.method != "POST":
        return render(
            request,
            "console/confirm.html",
            {
                "account": target,
                "title": "Donner un nouveau code d’activation",
                "explain": "Le compte revient à la 1re connexion : son ancien code et son mot de "
                "passe ne fonctionnent plus, et toutes ses sessions se terminent. Le nouveau code "
                "ne sera affiché qu’une fois.",
                "button": "Donner un nouveau code",
            },
        )
    try:
        code = services.give_new_activation_code(request, target)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("console:account", pk=target.pk)
    return render(request, "console/new_code.html", {"account": target, "code": code})


@console_view
@require_POST
def single_letter(request, pk):
    """The letter of a code just given: the browser sends the code back, and it is printed only if
    it is the account's live code (nothing is kept on the server to print it later)."""
    target = scoping.get_visible_account(request.user, pk)
    form = LetterCodeForm(request.POST)
    if not form.is_valid() or usable_activation_token(target, form.cleaned_data["code"]) is None:
        messages.error(request, "Ce code n’est plus valable : donnez un nouveau code.")
        return redirect("console:account", pk=target.pk)
    pdf = letters_pdf([_letter(target, form.cleaned_data["code"])], 1)
    return _download(pdf, "application/pdf", f"fiche-{target.identifier}.pdf")


# The form of each action, by its name in the account page's context.
FORM_NAMES = {IdentifierForm: "identifier_form", NamesForm: "names_form", LinkForm: "link_form"}


def _form_action(request, pk, form_class, operation, done):
    target = scoping.get_visible_account(request.user, pk)
    if request.method != "POST":
        return redirect("console:account", pk=target.pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            operation(target, form.cleaned_data)
        except DomainError as exc:
            # A one-field form: the refusal is that field's error; else the form's.
            form.add_error(next(iter(form.fields)) if len(form.fields) == 1 else None, exc.message)
        else:
            messages.success(request, done)
            return redirect("console:account", pk=target.pk)
    # What was typed stays in the field, with its error (RGAA 11.10, 11.11).
    return _account_page(request, target, status=400, **{FORM_NAMES[form_class]: form})


@console_view
def change_identifier(request, pk):
    return _form_action(
        request,
        pk,
        IdentifierForm,
        lambda target, data: services.change_identifier(request, target, data["identifier"]),
        "L'identifiant est changé.",
    )


@console_view
def rename(request, pk):
    return _form_action(
        request,
        pk,
        NamesForm,
        lambda target, data: services.rename_account(
            request, target, data["first_name"], data["last_name"]
        ),
        "Le nom est corrigé.",
    )


def _link(request, target, data):
    other = scoping.visible_accounts(request.user).filter(identifier=data["other"].strip()).first()
    if other is None:
        raise services.InvalidLink
    parent, child = (target, other) if target.profile == "parent" else (other, target)
    services.link_parent(request, parent, child)


@console_view
def link(request, pk):
    return _form_action(
        request,
        pk,
        LinkForm,
        lambda target, data: _link(request, target, data),
        "Le lien est ajouté.",
    )


@console_view
def unlink(request, pk, other_pk):
    target = scoping.get_visible_account(request.user, pk)
    other = scoping.get_visible_account(request.user, other_pk)
    relation = Relationship.objects.filter(
        Q(parent=target, child=other) | Q(parent=other, child=target)
    ).first()
    if relation is None:
        return redirect("console:account", pk=target.pk)
    if request.method != "POST":
        return render(
            request,
            "console/confirm.html",
            {
                "account": target,
                "title": "Retirer le lien parent–élève",
                "explain": f"Le lien entre {relation.parent.display_name} (parent) et "
                f"{relation.child.display_name} (élève) sera retiré.",
                "button": "Retirer le lien",
                "danger": True,
            },
        )
    services.unlink_parent(request, relation.parent, relation.child)
    messages.success(request, "Le lien est retiré.")
    return redirect("console:account", pk=target.pk)
