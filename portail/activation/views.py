import logging

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from portail.accounts.forms import weak_password_message
from portail.accounts.services import DomainError, WeakPassword, log_in
from portail.accounts.views import safe_next
from portail.security import ratelimit
from portail.security.devices import remember_device
from portail.security.views import rate_limited

from . import credentials, services
from .forms import ActivationForm

log = logging.getLogger(__name__)


def activate(request):
    """ "Première connexion": new password, email, mobile, charter — then logged in, at home."""
    try:
        user = services.pending_activation(request)
    except services.AlreadyActivated as exc:
        return _back_to_login(request, exc, level=messages.SUCCESS)
    except services.ActivationExpired as exc:
        return _back_to_login(request, exc)

    # Reached by the credentials mail's link: the address it was sent to, which the user may change.
    via_link = request.session.get("activation_via_link")
    initial = {"email": user.contact_email} if via_link and user.contact_email else None
    form = ActivationForm(user, request.POST or None, initial=initial)
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
        except services.AlreadyActivated as exc:
            return _back_to_login(request, exc, level=messages.SUCCESS)
        except services.ActivationExpired as exc:
            return _back_to_login(request, exc)
        else:
            return _after_activation(request, user)
    return render(
        request,
        "activation/activate.html",
        {"form": form, "activating": user, "strength_for": "new_password"},
    )


@require_GET
def activation_link(request, token):
    """The link of the credentials mail: check it, move it into the session, drop it from the URL."""
    try:
        credentials.open_activation_link(request, token)
    except DomainError as exc:
        done = isinstance(exc, credentials.LinkAlreadyUsed)
        response = render(
            request, "activation/link_invalid.html", {"error": exc.message, "done": done}
        )
    else:
        response = redirect("activation:activate")
    # The URL carries the token: it must not leak in a Referer header (as reset links).
    response["Referrer-Policy"] = "no-referrer"
    return response


def charter(request):
    return render(request, "activation/charter.html")


def _after_activation(request, user):
    """The account is active (committed): log in and go on. Nothing here may turn into a 500;
    if the session cannot be opened, the person is told to log in with the new password."""
    former_key = request.session.session_key
    state = services.end_activation(request)
    try:
        # A fresh session id, lasting as "Se souvenir de moi" asked at login.
        log_in(
            request,
            user,
            remember=bool(state["activation_remember"]),
            remember_days=settings.PORTAIL_REMEMBER_ME_DAYS,
        )
        logged_in = services.save_session_after_commit(request, "activation")
    except Exception:
        log.exception("activation committed, but the login that follows failed")
        request.session.modified = False
        logged_in = False
    if not logged_in:
        # The browser keeps its former session, which still names the activation: a retry
        # of the form gets AlreadyActivated. The message travels in the messages cookie.
        messages.success(request, services.ACTIVATED_LOG_IN_MESSAGE)
        return redirect("accounts:login")
    services.leave_activation_note(former_key, user, state["activation_token_id"])
    messages.success(request, "Votre compte est activé. Bienvenue dans votre ENT !")
    response = redirect(safe_next(request, state["activation_next"]))
    remember_device(request, response, user)  # the code proved the owner: a known device
    return response


def _back_to_login(request, exc, level=messages.ERROR):
    if services.end_activation(request)["activation_user_id"]:
        messages.add_message(request, level, exc.message)  # a first connection was under way
    return redirect("accounts:login")
