"""Who may open the console: a function, then the second factor once per session."""

import functools
from urllib.parse import urlencode

import segno
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe

from portail.accounts.services import DomainError
from portail.directory.models import is_regional_admin
from portail.security import ratelimit
from portail.security.views import rate_limited

from .. import otp, scoping, services
from ..forms import CodeForm

SESSION_VERIFIED = "console_verified_user"
PAGE_SIZE = 50


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
                    "Vous avez utilisé un code de secours : il ne servira plus. "
                    "Il vous en reste "
                    f"{request.user.totp_recovery_codes.filter(used_at__isnull=True).count()}.",
                )
            return redirect(next_url)
    return render(request, "console/verify.html", {"form": form, "next": next_url})
