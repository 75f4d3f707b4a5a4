"""The référent console. Every account, class and event is fetched through scoping.py."""

import base64
import datetime
import functools
from urllib.parse import urlencode

import segno
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q, prefetch_related_objects
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from portail.accounts.models import State, User
from portail.accounts.services import DomainError, usable_activation_token
from portail.activation import credentials
from portail.audit import queries as audit_queries
from portail.audit.models import Event
from portail.directory.models import Function, Relationship, Structure, is_regional_admin
from portail.security import ratelimit
from portail.security.views import rate_limited

from . import otp, scoping, services
from .forms import (
    AuditFilterForm,
    CodeForm,
    IdentifierForm,
    ImportForm,
    LetterCodeForm,
    LettersForm,
    LinkForm,
    MergeForm,
    NamesForm,
    ReferentSearchForm,
    SearchForm,
    StructureSearchForm,
)
from .letters import Letter, letters_csv, letters_pdf

SESSION_VERIFIED = "console_verified_user"
PAGE_SIZE = 50

TAG_LABELS = {
    "console.account.blocked": "Compte bloqué",
    "console.account.unblocked": "Compte débloqué",
    "console.account.new_code": "Nouveau code d'activation",
    "console.account.reset_link_sent": "Lien de réinitialisation envoyé",
    "account.password.reset_requested": "Réinitialisation demandée",
    "console.account.identifier_changed": "Identifiant changé",
    "console.account.renamed": "Nom corrigé",
    "console.account.linked": "Lien parent–élève ajouté",
    "console.account.unlinked": "Lien parent–élève retiré",
    "console.letters.new_code": "Fiche de connexion (nouveau code)",
    "account.credentials_mailed": "Identifiants envoyés par courriel",
    "console.duplicate.ignored": "Doublon écarté",
    "console.account.merged": "Doublon fusionné dans ce compte",
    "console.account.merged_into": "Compte fusionné dans un autre (désactivé)",
    "directory.referent.appointed": "Nommé référent ENT",
    "directory.referent.dismissed": "Retiré des référents ENT",
    "directory.import": "Import",
    "account.created": "Compte créé (import)",
    "account.login": "Connexion",
    "account.login.failed": "Échec de connexion",
    "account.login.blocked": "Connexion refusée (compte bloqué)",
    "account.logout": "Déconnexion",
}


def tag_label(tag):
    return TAG_LABELS.get(tag, tag)


# --- Access: a function, then the second factor once per session -------------------------------


def _login_redirect(request):
    return redirect(reverse("accounts:login") + "?" + urlencode({"next": request.get_full_path()}))


def _function_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _login_redirect(request)
        if not scoping.has_console_access(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def console_view(view):
    """Logged in, holding a function, enrolled, and second factor checked in this session."""

    @functools.wraps(view)
    @_function_required
    def wrapper(request, *args, **kwargs):
        if not services.is_enrolled(request.user):
            return redirect("console:enrol")
        if request.session.get(SESSION_VERIFIED) != request.user.pk:
            return redirect(
                reverse("console:verify") + "?" + urlencode({"next": request.get_full_path()})
            )
        # The navigation shows the regional pages to those who may open them.
        request.console_regional = is_regional_admin(request.user)
        return view(request, *args, **kwargs)

    return wrapper


def regional_view(view):
    """A console view for regional administrators only: to anyone else it does not exist."""

    @functools.wraps(view)
    @console_view
    def wrapper(request, *args, **kwargs):
        if not request.console_regional:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@_function_required
def enrol(request):
    try:
        secret = services.start_totp_enrolment(request.user)
    except services.AlreadyEnrolled:
        return redirect("console:search")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.confirm_totp_enrolment(
                request, request.user, form.cleaned_data["code"]
            )
        except ratelimit.RateLimited as exc:
            return rate_limited(request, exc)
        except DomainError as exc:
            form.add_error("code", exc.message)
        else:
            request.session.cycle_key()
            request.session[SESSION_VERIFIED] = request.user.pk
            # Shown once, in this response only: they are stored hashed.
            return render(request, "console/recovery_codes.html", {"codes": codes})
    uri = otp.provisioning_uri(secret, request.user.identifier)
    # An inline SVG: no request leaves the page, no script, no inline style (CSP).
    qr_svg = segno.make(uri, error="m").svg_inline(scale=5, border=4, title="QR code à scanner")
    return render(
        request,
        "console/enrol.html",
        {"form": form, "qr_svg": mark_safe(qr_svg), "secret": _grouped(secret)},  # noqa: S308 (segno's own SVG, no user input)
    )


def _grouped(secret):
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@_function_required
def verify(request):
    if not services.is_enrolled(request.user):
        return redirect("console:enrol")
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    if not next_url.startswith("/console/"):
        next_url = reverse("console:search")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            how = services.verify_second_factor(request, request.user, form.cleaned_data["code"])
        except ratelimit.RateLimited as exc:
            return rate_limited(request, exc)
        except DomainError as exc:
            form.add_error("code", exc.message)
        else:
            request.session.cycle_key()
            request.session[SESSION_VERIFIED] = request.user.pk
            if how == "recovery":
                messages.warning(
                    request,
                    "Vous avez utilisé un code de secours : il ne servira plus. "
                    "Il vous en reste "
                    f"{request.user.totp_recovery_codes.filter(used_at__isnull=True).count()}.",
                )
            return redirect(next_url)
    return render(request, "console/verify.html", {"form": form, "next": next_url})


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


@console_view
def account(request, pk):
    target = scoping.get_visible_account(request.user, pk)
    visible = scoping.visible_accounts(request.user)
    children = User.objects.filter(parent_links__parent=target)
    parents = User.objects.filter(child_links__child=target)
    events = scoping.visible_events(request.user).filter(target=target).select_related("actor")
    return render(
        request,
        "console/account.html",
        {
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
            "events": [(e, tag_label(e.tag)) for e in events[:100]],
            "identifier_form": IdentifierForm(initial={"identifier": target.identifier}),
            "names_form": NamesForm(
                initial={"first_name": target.first_name, "last_name": target.last_name}
            ),
            "link_form": LinkForm(),
            "State": State,
        },
    )


# --- Actions: each GET shows what will happen, each POST does it ------------------------------


ACTIONS = {
    "block": {
        "title": "Bloquer le compte",
        "explain": "Le compte ne pourra plus se connecter et toutes ses sessions ouvertes se "
        "terminent immédiatement. À la connexion, il verra : « L'administrateur de votre "
        "établissement a bloqué votre accès à l'ENT. Veuillez le contacter. »",
        "button": "Bloquer",
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
        "à l'adresse de messagerie du compte. Vous ne voyez ni ne choisissez le mot de passe.",
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
                "title": "Donner un nouveau code d'activation",
                "explain": "Le compte revient à la 1ère connexion : son ancien code et son mot de "
                "passe ne fonctionnent plus, et toutes ses sessions se terminent. Le nouveau code "
                "ne sera affiché qu'une fois.",
                "button": "Donner un nouveau code",
            },
        )
    try:
        code = services.give_new_activation_code(request, target)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("console:account", pk=target.pk)
    return render(request, "console/new_code.html", {"account": target, "code": code})


def _letter(account, code):
    return Letter(
        first_name=account.first_name,
        last_name=account.last_name,
        classes=", ".join(c.name for c in account.classes.all()),
        structure=", ".join(s.name for s in account.structures.all()),
        identifier=account.identifier,
        code=code,
    )


@console_view
@require_POST
def single_letter(request, pk):
    """The letter of a code just given: the browser sends the code back, and it is printed only if
    it is the account's live code (nothing is kept on the server to print it later)."""
    target = scoping.get_visible_account(request.user, pk)
    form = LetterCodeForm(request.POST)
    if not form.is_valid() or usable_activation_token(target, form.cleaned_data["code"]) is None:
        messages.error(request, "Ce code n'est plus valable : donnez un nouveau code.")
        return redirect("console:account", pk=target.pk)
    pdf = letters_pdf([_letter(target, form.cleaned_data["code"])], 1)
    return _download(pdf, "application/pdf", f"fiche-{target.identifier}.pdf")


def _download(content, content_type, filename):
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _form_action(request, pk, form_class, operation, done):
    target = scoping.get_visible_account(request.user, pk)
    if request.method != "POST":
        return redirect("console:account", pk=target.pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            operation(target, form.cleaned_data)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, done)
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect("console:account", pk=target.pk)


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
            },
        )
    services.unlink_parent(request, relation.parent, relation.child)
    messages.success(request, "Le lien est retiré.")
    return redirect("console:account", pk=target.pk)


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


# --- Audit log -------------------------------------------------------------------------------------


@console_view
def audit_log(request):
    # Region scale (issue 8 §5): a cursor instead of page numbers and a count, the actions from
    # the index; see portail/audit/queries.py.
    # A référent's accounts (a few thousand at most) are named, so their events are read through
    # the account index; a regional administrator's are nearly all events, read by date.
    by_target = not is_regional_admin(request.user)
    if by_target:
        ids = set(scoping.visible_accounts(request.user).values_list("pk", flat=True))
        events = Event.objects.filter(target_id__in=ids)
    else:
        ids = None
        events = scoping.visible_events(request.user)
    tags = audit_queries.known_tags()
    if request.GET.get("tag") and request.GET["tag"] not in tags:
        cache.delete(audit_queries.TAGS_CACHE_KEY)  # an action recorded since the list was made
        tags = audit_queries.known_tags()
    form = AuditFilterForm(request.GET or None, tags=tags)
    if form.is_valid():
        data = form.cleaned_data
        if data["account"]:
            # One account: its id, then its events through the account index.
            target = User.objects.filter(identifier=data["account"].strip()).first()
            if target is None or (ids is not None and target.pk not in ids):
                events = Event.objects.none()
            elif ids is not None:
                events = Event.objects.filter(target_id=target.pk)  # visible: checked above
            else:
                events = events.filter(target_id=target.pk)
            by_target = True
        if data["tag"]:
            events = events.filter(tag=data["tag"])
        tz = timezone.get_current_timezone()
        if data["since"]:
            events = events.filter(
                at__gte=datetime.datetime.combine(data["since"], datetime.time.min, tz)
            )
        if data["until"]:
            events = events.filter(
                at__lt=datetime.datetime.combine(
                    data["until"] + datetime.timedelta(days=1), datetime.time.min, tz
                )
            )
    page = audit_queries.page_of(
        events, request.GET.get("avant", ""), PAGE_SIZE, by_target=by_target
    )
    # The accounts named on the page, in one query (a join would change the events' plan).
    prefetch_related_objects(page.events, "actor", "target")
    query = request.GET.copy()
    query.pop("avant", None)
    return render(
        request,
        "console/audit.html",
        {
            "form": form,
            "page": page,
            "rows": [(e, tag_label(e.tag)) for e in page.events],
            "query": query.urlencode(),
        },
    )


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
            f"Les comptes sont fusionnés : {kept.identifier} est conservé, "
            f"{folded.identifier} est désactivé.",
        )
        return redirect("console:account", pk=kept.pk)
    return render(request, "console/merge.html", {"form": form, "pair": pair})


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
                else f"{target.display_name} n'est plus référent ENT de {structure.name}.",
            )
        return redirect(back)
    spec = (
        {
            "title": "Nommer un référent ENT",
            "explain": f"Ce compte deviendra référent ENT de {structure.name} ({structure.uai}) : "
            "il verra et gérera les comptes de l'établissement depuis la console, après avoir "
            "enregistré une application d'authentification.",
            "button": "Nommer référent",
        }
        if appoint
        else {
            "title": "Retirer un référent ENT",
            "explain": f"Ce compte ne sera plus référent ENT de {structure.name} "
            f"({structure.uai}) : il perd aussitôt l'accès aux comptes de l'établissement.",
            "button": "Retirer",
        }
    )
    return render(request, "console/confirm.html", {"account": target, "cancel_url": back, **spec})


@regional_view
def appoint_referent(request, structure_pk, pk):
    return _referent_action(request, structure_pk, pk, appoint=True)


@regional_view
def dismiss_referent(request, structure_pk, pk):
    return _referent_action(request, structure_pk, pk, appoint=False)
