from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from portail.federation.login.hooks import (
    check_pending_link,
    federated_logout_url,
    leaving_page,
)
from portail.security import devices, ratelimit, throttle

from . import services
from .forms import LoginForm
from .passwords import analysis_slot, evaluate, evaluate_for_user


def safe_next(request, target):
    """`target` if it stays on this site (no open redirect), else the home page."""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


def _next_url(request):
    return safe_next(request, request.POST.get("next") or request.GET.get("next") or "")


def _reauthentication_asked(request):
    """CAS renew=true or OIDC prompt=login/max_age sent this logged-in user to type the password."""
    from portail.sso import services as sso_services

    return request.session.get(
        sso_services.CREDENTIALS_ASKED_KEY
    ) is not None and not sso_services.credentials_just_typed(request)


def finish_login(request, user, *, remember: bool, next_url: str, method: str = ""):
    """Log `user` in and go on to `next_url` (the CAS service or OIDC authorize request that
    sent the browser here): the one path of password and federated logins (federation.login)."""
    services.log_in(
        request,
        user,
        remember=remember,
        remember_days=settings.PORTAIL_REMEMBER_ME_DAYS,
        method=method,
    )
    response = redirect(safe_next(request, next_url))
    devices.remember_device(request, response, user)
    return response


def login_view(request):
    if (
        request.method == "GET"
        and request.user.is_authenticated
        and not _reauthentication_asked(request)
    ):
        # Already logged in: the login form has nothing to offer (issue 10).
        return redirect(_next_url(request))
    form = LoginForm(request.POST or None)
    challenge = None
    if request.method == "POST" and form.is_valid():
        try:
            result = services.authenticate(
                request, form.cleaned_data["identifier"], form.cleaned_data["password"]
            )
            check_pending_link(request, result)  # FranceConnect linking: parents only
        except services.ChallengeRequired as exc:
            form.add_error(None, exc.message)
            challenge = throttle.new_challenge()
        except services.DomainError as exc:
            form.add_error(None, exc.message)
        else:
            if isinstance(result, services.ActivationRequired):
                from portail.activation.services import begin_activation

                begin_activation(
                    request,
                    result,
                    remember=form.cleaned_data["remember"],
                    next_url=_next_url(request),
                )
                return redirect("activation:activate")
            return finish_login(
                request, result, remember=form.cleaned_data["remember"], next_url=_next_url(request)
            )
    if challenge is None and throttle.require_challenge(request):
        challenge = throttle.new_challenge()
    return render(
        request,
        "accounts/login.html",
        {"form": form, "next": request.GET.get("next", ""), "challenge": challenge},
    )


@require_POST
def logout_view(request):
    after = federated_logout_url(request)  # ÉduConnect or FranceConnect: log out there too
    services.log_out(request)
    if after:
        return leaving_page(request, *after, title="Déconnexion")
    return redirect("accounts:login")


@require_POST
def strength(request):
    """The meter's question, answered by the same function the server enforces."""
    try:
        ratelimit.hit("strength:ip", request.client_ip)
    except ratelimit.RateLimited as exc:
        return JsonResponse(
            {"error": "too many"}, status=429, headers={"Retry-After": exc.retry_after}
        )
    password = request.POST.get("password", "")
    user = _strength_subject(request)
    with analysis_slot() as slot:
        if not slot:
            # The node is already analysing as many as it allows: the meter keeps its last
            # answer (it ignores a refusal) and the submitted form is checked anyway.
            return JsonResponse({"error": "busy"}, status=429, headers={"Retry-After": "1"})
        result = (
            evaluate_for_user(password, user)
            if user
            # An identifier is at most 64 characters (User.identifier): more is not one, and
            # would only make the personal-words check longer.
            else evaluate(password, identifier=request.POST.get("identifier", "")[:64])
        )
    return JsonResponse({"level": result.level, "percent": result.percent, "errors": result.errors})


def _strength_subject(request):
    """The account whose names the candidate is checked against: logged in, activating, resetting."""
    from django.contrib.auth import get_user_model

    if request.user.is_authenticated:
        return request.user
    for key in ("activation_user_id", "reset_user_id"):
        if request.session.get(key):
            return get_user_model().objects.filter(pk=request.session[key]).first()
    return None
