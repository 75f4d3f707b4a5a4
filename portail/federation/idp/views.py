"""SAML 2.0 identity provider endpoints: metadata, SSO (both bindings, both initiators), SLO."""

import secrets

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp

from portail.sso import services as sso_services

from . import saml, services
from .middleware import logout_page
from .models import ServiceProvider
from .services import PendingRequest, SamlRefusal
from .signals import FRONT_CHANNEL_ATTRIBUTE

# Pending requests kept per session while the user logs in (a few tabs at most).
MAX_PENDING = 8


def _refusal(request, exc: SamlRefusal):
    return render(request, "federation_idp/error.html", {"message": exc.message}, status=exc.status)


def _post_page(request, form, name):
    response = render(request, "federation_idp/post.html", {"form": form, "name": name})
    # The form leaves for the provider's ACS: allowed for this page only (form-action 'self').
    response._csp_update = {"form-action": [services.origin(form.url)]}
    return response


def _binding(request):
    return BINDING_HTTP_POST if request.method == "POST" else BINDING_HTTP_REDIRECT


@require_GET
def metadata(request):
    return HttpResponse(saml.metadata_xml(), content_type="application/samlmetadata+xml")


@csrf_exempt  # SAML HTTP-POST binding: posted by the provider's page; the message is signed
@require_http_methods(["GET", "POST"])
def sso(request):
    """SP-initiated Web Browser SSO: check the AuthnRequest, then answer once logged in."""
    try:
        pending = services.read_authn_request(request, _binding(request))
    except SamlRefusal as exc:
        return _refusal(request, exc)
    if pending.is_passive and not request.user.is_authenticated:
        # SAML Core §3.4.1 IsPassive: no login page; the provider learns there is no session.
        form = services.status_answer(
            request, pending, samlp.STATUS_NO_PASSIVE, "Pas de session sur le portail"
        )
        return _post_page(request, form, services.provider_name(pending))
    if pending.force_authn:
        # SAML Core §3.4.1 ForceAuthn: the password again, whatever the session (as CAS renew).
        sso_services.ask_for_credentials(request)
    key = secrets.token_urlsafe(16)
    store = request.session.get(services.PENDING_SESSION_KEY, {})
    store = dict(list(store.items())[-(MAX_PENDING - 1) :])
    store[key] = pending.as_dict()
    request.session[services.PENDING_SESSION_KEY] = store
    return redirect(reverse("federation_idp:continue", args=[key]))


@login_required
@require_GET
def sso_continue(request, key):
    store = request.session.get(services.PENDING_SESSION_KEY, {})
    data = store.get(key)
    if (
        data is not None
        and data.get("force_authn")
        and not sso_services.credentials_just_typed(request)
    ):
        return redirect_to_login(request.get_full_path())
    store.pop(key, None)
    request.session[services.PENDING_SESSION_KEY] = store
    if data is None:
        return _refusal(
            request,
            SamlRefusal(
                "Cette demande de connexion a expiré ou a déjà servi. Rouvrez la ressource.",
                status=400,
            ),
        )
    pending = PendingRequest(**data)
    try:
        form = services.answer(request, pending)
    except SamlRefusal as exc:
        return _refusal(request, exc)
    return _post_page(request, form, services.provider_name(pending))


@login_required
@require_GET
def initiate(request, pk):
    """IdP-initiated SSO: the home page's tile of a SAML resource."""
    sp = get_object_or_404(ServiceProvider, pk=pk, enabled=True)
    try:
        form = services.answer(request, services.idp_initiated(sp))
    except SamlRefusal as exc:
        return _refusal(request, exc)
    return _post_page(request, form, sp.name)


@xframe_options_sameorigin  # loaded in a frame of the portal's logout page
@require_GET
def slo_post(request, token):
    """A front-channel frame for a provider whose SingleLogoutService is HTTP-POST only."""
    try:
        sp, form = services.posted_logout_request(token)
    except SamlRefusal as exc:
        return _refusal(request, exc)
    response = _post_page(request, form, sp.name)
    # Framed by the portal's own logout page only (frame-ancestors, replacing 'none').
    response._csp_replace = {"frame-ancestors": ["'self'"]}
    return response


@csrf_exempt  # SAML HTTP-POST binding; the LogoutRequest itself must be signed
@require_http_methods(["GET", "POST"])
def slo(request):
    params = request.GET if request.method == "GET" else request.POST
    if "SAMLResponse" in params:
        # A provider's LogoutResponse to our front-channel request: nothing more to end.
        return render(request, "federation_idp/logged_out.html")
    if "SAMLRequest" not in params:
        return _refusal(request, SamlRefusal("Aucune demande de déconnexion SAML ici."))
    try:
        answer = services.handle_logout_request(request, _binding(request))
    except SamlRefusal as exc:
        return _refusal(request, exc)
    others = getattr(request, FRONT_CHANNEL_ATTRIBUTE, None) or []
    if answer.form is not None:
        return logout_page(request, others, form=answer.form)
    if answer.redirect is not None:
        return redirect(answer.redirect)  # the middleware adds the other providers' frames
    return render(request, "federation_idp/logged_out.html")
