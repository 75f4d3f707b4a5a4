"""ÉduConnect (SAML SP) and FranceConnect (OIDC RP) endpoints: thin views over educonnect.py,
franceconnect.py and services.py."""

import contextlib
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from portail.accounts.services import DomainError
from portail.accounts.views import safe_next
from portail.security import ratelimit

from . import educonnect, franceconnect, services
from .fetch import FetchError
from .hooks import leaving_page

log = logging.getLogger(__name__)

EDUCONNECT_REQUEST = "educonnect_request"
FRANCECONNECT_REQUEST = "franceconnect_request"

UNAVAILABLE = (
    "La connexion avec {name} est momentanément indisponible. Réessayez dans quelques "
    "minutes, ou connectez-vous avec votre identifiant et votre mot de passe."
)
FAILED = (
    "La connexion avec {name} n’a pas abouti. Recommencez depuis la page de connexion ; si "
    "le problème continue, connectez-vous avec votre identifiant et votre mot de passe."
)


def _client_ip(request):
    return getattr(request, "client_ip", None) or request.META.get("REMOTE_ADDR")


def _failure(request, name, status=400, message=FAILED):
    return render(
        request,
        "federation/failure.html",
        {"name": name, "message": message.format(name=name)},
        status=status,
    )


def _refusal(request, name, exc):
    """The person was proved by the federation, but may not log in: a page saying what to do."""
    return render(
        request, "federation/refused.html", {"name": name, "message": exc.message}, status=403
    )


def _limited(request, name):
    """Failed federated logins from one address: OWASP ASVS 5.0 V6.3.1 (anti-automation)."""
    try:
        ratelimit.guard({"federation:address": _client_ip(request)})
    except ratelimit.RateLimited as exc:
        response = _failure(
            request,
            name,
            status=429,
            message=(
                "Trop de tentatives de connexion avec {name} depuis votre réseau. Réessayez "
                f"dans {exc.minutes} minute{'s' if exc.minutes > 1 else ''}."
            ),
        )
        response["Retry-After"] = str(exc.retry_after)
        return response
    return None


def _count_failure(request):
    with contextlib.suppress(ratelimit.RateLimited):  # counted; the next request is refused
        ratelimit.hit("federation:address", _client_ip(request))


def _start_params(request):
    return {
        "next": safe_next(request, request.POST.get("next") or request.GET.get("next") or ""),
        "remember": bool(request.POST.get("remember")),
    }


# --- ÉduConnect ---------------------------------------------------------------------------------


@require_POST
def educonnect_login(request):
    if not educonnect.enabled():
        raise Http404
    try:
        request_id, location = educonnect.authn_request()
    except (FetchError, OSError, educonnect.Refused) as exc:
        log.warning("ÉduConnect unavailable: %s", exc)
        return _failure(request, "ÉduConnect", status=503, message=UNAVAILABLE)
    request.session[EDUCONNECT_REQUEST] = {"id": request_id, **_start_params(request)}
    return leaving_page(request, location, "ÉduConnect", "Connexion avec ÉduConnect")


@csrf_exempt  # a cross-site POST by design (SAML HTTP-POST binding); the response is signed
@require_POST
def educonnect_acs(request):
    if not educonnect.enabled():
        raise Http404
    if settings.SESSION_COOKIE_NAME not in request.COOKIES and not request.POST.get("same_site"):
        # ÉduConnect's page posted cross-site: a SameSite=Lax session cookie stays behind.
        # Our own page posts it again, same-site (nothing is checked or consumed before).
        return render(
            request,
            "federation/educonnect_continue.html",
            {"saml_response": request.POST.get("SAMLResponse", "")},
        )
    if (limited := _limited(request, "ÉduConnect")) is not None:
        return limited
    started = request.session.pop(EDUCONNECT_REQUEST, None) or {}
    try:
        facts = educonnect.check_response(request.POST.get("SAMLResponse", ""), started.get("id"))
    except educonnect.Refused as exc:
        services.refused(request, "educonnect", str(exc))
        _count_failure(request)
        return _failure(request, "ÉduConnect")
    except (FetchError, OSError) as exc:
        log.warning("ÉduConnect unavailable: %s", exc)
        return _failure(request, "ÉduConnect", status=503, message=UNAVAILABLE)
    try:
        user = services.educonnect_account(request, facts)
    except DomainError as exc:
        return _refusal(request, "ÉduConnect", exc)
    return services.federated_login(
        request,
        user,
        method="educonnect",
        remember=started.get("remember", False),
        next_url=started.get("next", ""),
        state={
            "name_id": facts["name_id"],
            "session_index": facts["session_index"],
        },
    )


def educonnect_metadata(request):
    if not educonnect.enabled():
        raise Http404
    try:
        xml = educonnect.sp_metadata()
    except (FetchError, OSError, educonnect.Refused) as exc:
        log.warning("ÉduConnect metadata unavailable: %s", exc)
        return HttpResponse("Métadonnées indisponibles", status=503, content_type="text/plain")
    return HttpResponse(xml, content_type="application/samlmetadata+xml")


@require_GET
def educonnect_slo(request):
    """ÉduConnect's answer to our LogoutRequest, or its own LogoutRequest (IdP-initiated)."""
    if not educonnect.enabled():
        raise Http404
    try:
        kind, location = educonnect.check_logout_message(request.GET)
    except (educonnect.Refused, FetchError, OSError) as exc:
        log.warning("ÉduConnect logout message refused: %s", exc)
        return redirect("accounts:login")
    if kind == "request":
        from portail.accounts.services import log_out

        if request.session.get("federation_login", {}).get("method") == "educonnect":
            log_out(request)
        return redirect(location)
    return redirect("accounts:login")


# --- FranceConnect ------------------------------------------------------------------------------


@require_POST
def franceconnect_login(request):
    if not franceconnect.enabled():
        raise Http404
    try:
        kept, location = franceconnect.begin()
    except FetchError as exc:
        log.warning("FranceConnect unavailable: %s", exc)
        return _failure(request, "FranceConnect", status=503, message=UNAVAILABLE)
    request.session[FRANCECONNECT_REQUEST] = {**kept, **_start_params(request)}
    return leaving_page(request, location, "FranceConnect", "Connexion avec FranceConnect")


@require_GET
def franceconnect_callback(request):
    if not franceconnect.enabled():
        raise Http404
    if (limited := _limited(request, "FranceConnect")) is not None:
        return limited
    started = request.session.pop(FRANCECONNECT_REQUEST, None)
    try:
        result = franceconnect.complete(started, request.GET)
    except franceconnect.Refused as exc:
        services.refused(request, "franceconnect", str(exc))
        _count_failure(request)
        return _failure(request, "FranceConnect")
    except FetchError as exc:
        log.warning("FranceConnect unavailable: %s", exc)
        return _failure(request, "FranceConnect", status=503, message=UNAVAILABLE)
    try:
        user = services.franceconnect_account(request, result["claims"], result["id_token"])
    except DomainError as exc:
        return _refusal(request, "FranceConnect", exc)
    if user is None:
        messages.info(
            request,
            "Première connexion avec FranceConnect : pour lier votre identité FranceConnect à "
            "votre compte ENT de parent, connectez-vous une seule fois ci-dessous avec votre "
            "identifiant et votre mot de passe (ou le code d’activation de votre courrier). "
            "Ensuite, « S’identifier avec FranceConnect » suffira.",
        )
        response = redirect("accounts:login")
        if started.get("next"):
            from urllib.parse import urlencode

            response["Location"] += "?" + urlencode({"next": started["next"]})
        return response
    return services.federated_login(
        request,
        user,
        method="franceconnect",
        remember=started.get("remember", False),
        next_url=started.get("next", ""),
        state={"id_token": result["id_token"]},
    )


@login_required
@require_POST
def franceconnect_unlink(request):
    services.unlink_franceconnect(request, request.user)
    messages.success(
        request,
        "Votre compte n’est plus lié à FranceConnect. Vous pourrez le lier de nouveau à votre "
        "prochaine connexion avec FranceConnect.",
    )
    return redirect("account:account")
