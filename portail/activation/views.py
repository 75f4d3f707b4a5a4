from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render

from portail.accounts.forms import weak_password_message
from portail.accounts.services import WeakPassword, log_in
from portail.accounts.views import safe_next
from portail.security import ratelimit
from portail.security.devices import remember_device
from portail.security.views import rate_limited

from . import services
from .forms import ActivationForm


def activate(request):
    """ "Première connexion": new password, email, mobile, charter — then logged in, at home."""
    try:
        user = services.pending_activation(request)
    except services.ActivationExpired as exc:
        return _back_to_login(request, exc)

    form = ActivationForm(user, request.POST or None)
    if request.method == "POST":
        try:
            services.count_attempt(request, user)
        except ratelimit.RateLimited as exc:
            return rate_limited(request, exc)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.activate_account(
                request,
                user,
                password=form.cleaned_data["new_password"],
                email=form.cleaned_data["email"],
                phone=form.cleaned_data["phone"],
            )
        except WeakPassword as exc:
            form.add_error("new_password", weak_password_message(exc.errors))
        except services.ActivationExpired as exc:
            return _back_to_login(request, exc)
        else:
            state = services.end_activation(request)
            # A fresh session id, lasting as "Se souvenir de moi" asked at login.
            log_in(
                request,
                user,
                remember=bool(state["activation_remember"]),
                remember_days=settings.PORTAIL_REMEMBER_ME_DAYS,
            )
            messages.success(request, "Votre compte est activé. Bienvenue dans votre ENT !")
            response = redirect(safe_next(request, state["activation_next"]))
            remember_device(request, response, user)  # the code proved the owner: a known device
            return response
    return render(
        request,
        "activation/activate.html",
        {"form": form, "activating": user, "strength_for": "new_password"},
    )


def charter(request):
    return render(request, "activation/charter.html")


def _back_to_login(request, exc):
    if services.end_activation(request)["activation_user_id"]:
        messages.error(request, exc.message)  # a first connection was under way: say why
    return redirect("accounts:login")
