from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from portail.accounts.services import DomainError, WeakPassword
from portail.activation.services import save_session_after_commit
from portail.security.ratelimit import RateLimited
from portail.security.views import rate_limited

from . import services
from .forms import IdentifierDetailsForm, LostIdentifierForm, LostPasswordForm, ResetPasswordForm


def _no_referrer(response):
    # The reset URL carries the token: no page of the flow may leak it in a Referer header.
    response["Referrer-Policy"] = "no-referrer"
    return response


def _invalid_link(request, exc):
    """The page for a reset link that cannot serve; `exc` (a DomainError) says why."""
    done = isinstance(exc, services.ResetAlreadyDone)
    return _no_referrer(
        render(request, "recovery/reset_invalid.html", {"error": exc.message, "done": done})
    )


def help_page(request):
    return render(request, "recovery/help.html")


@require_http_methods(["GET", "POST"])
def lost_password(request):
    if sent := _sent_page(request, "recovery/lost_password.html"):
        return sent
    form = LostPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.request_password_reset(request, form.cleaned_data["identifier"])
        except RateLimited as exc:
            return rate_limited(request, exc)
        except services.MailJustSent as exc:
            return _answer(request, form, sent_message=exc.message)
        except DomainError as exc:
            if neutral := _answer(request, form, refusal=exc):
                return neutral
        else:
            return _answer(request, form, sent_message=services.RESET_SENT_MESSAGE)
    return render(request, "recovery/lost_password.html", {"form": form})


SESSION_SENT = "recovery_sent_message"


def _answer(request, form, *, sent_message=None, refusal=None):
    """The answer to a lost-password or lost-identifier request: sent, or `refusal` (a DomainError).

    With PORTAIL_NEUTRAL_RECOVERY_MESSAGES both read the same neutral message, which never tells
    whether an account exists. Otherwise a refusal goes on the form: None, the view shows it again.
    """
    if settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES:
        return _sent(request, services.NEUTRAL_MESSAGE)
    if refusal is not None:
        form.add_error(None, refusal.message)
        return None
    return _sent(request, sent_message)


def _sent(request, message, path=None):
    """To `path` (this page by default), which shows `message` once (see _sent_page)."""
    # Post/Redirect/Get: reloading the confirmation must not send another email.
    request.session[SESSION_SENT] = message
    return redirect((path or request.path) + "?envoye=1")


def _sent_page(request, template):
    """The confirmation after the redirect; None when there is none to show."""
    if request.method == "GET" and "envoye" in request.GET and SESSION_SENT in request.session:
        return render(request, template, {"sent_message": request.session.pop(SESSION_SENT)})
    return None


@require_http_methods(["GET", "POST"])
def lost_identifier(request):
    if sent := _sent_page(request, "recovery/lost_identifier.html"):
        return sent
    form = LostIdentifierForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        try:
            services.send_identifier_reminder(request, email)
        except RateLimited as exc:
            return rate_limited(request, exc)
        except services.MailJustSent as exc:
            return _answer(request, form, sent_message=exc.message)
        except services.SeveralAccounts:
            # Only the address crosses to the next step; the accounts are looked up again there.
            request.session[services.SESSION_IDENTIFIER_EMAIL] = email
            return redirect("recovery:lost_identifier_details")
        except DomainError as exc:
            if neutral := _answer(request, form, refusal=exc):
                return neutral
        else:
            return _answer(request, form, sent_message=services.IDENTIFIER_SENT_MESSAGE)
    return render(request, "recovery/lost_identifier.html", {"form": form})


@require_http_methods(["GET", "POST"])
def lost_identifier_details(request):
    """Several accounts share the address: the first name, then one answer whatever it is."""
    email = request.session.get(services.SESSION_IDENTIFIER_EMAIL)
    if not email or len(services.identifier_candidates(email)) < 2:
        return redirect("recovery:lost_identifier")
    form = IdentifierDetailsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.send_identifier_reminder(
                request, email, first_name=form.cleaned_data["first_name"]
            )
        except RateLimited as exc:
            return rate_limited(request, exc)
        except services.MailJustSent as exc:
            message = exc.message
        except DomainError as exc:  # the accounts changed since the first step
            form.add_error(None, exc.message)
            return render(request, "recovery/lost_identifier_details.html", {"form": form})
        else:
            # The same words whether the first name matched or not: only the mail tells.
            message = services.DETAILS_SENT_MESSAGE
        del request.session[services.SESSION_IDENTIFIER_EMAIL]
        return _sent(request, message, reverse("recovery:lost_identifier"))
    return render(request, "recovery/lost_identifier_details.html", {"form": form})


@require_http_methods(["GET"])
def reset_link(request, token):
    """The link of the email: check the token, move it into the session, drop it from the URL."""
    try:
        services.open_reset_link(request, token)
    except RateLimited as exc:
        return _no_referrer(rate_limited(request, exc))
    except DomainError as exc:
        return _invalid_link(request, exc)
    return _no_referrer(redirect("recovery:reset"))


@require_http_methods(["GET", "POST"])
def reset(request):
    try:
        services.current_reset_link(request)
    except DomainError as exc:
        return _invalid_link(request, exc)
    form = ResetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.reset_password(
                request, form.cleaned_data["identifier"], form.cleaned_data["new_password"]
            )
        except RateLimited as exc:
            return _no_referrer(rate_limited(request, exc))
        except services.IdentifierMismatch as exc:
            form.add_error("identifier", exc.message)
        except WeakPassword as exc:
            for error in exc.errors:
                form.add_error("new_password", error)
        except (services.TokenInvalid, services.ResetAlreadyDone) as exc:
            return _invalid_link(request, exc)
        else:
            # Committed: a session store failing now must not show an error (issue 8 §2).
            save_session_after_commit(request, "reset")
            messages.success(request, services.PASSWORD_CHANGED_MESSAGE)
            return _no_referrer(redirect("accounts:login"))
    # Not no-referrer here: this URL holds no token (it left at the redirect above), and under
    # no-referrer browsers send "Origin: null" with the form's POST (Fetch standard, "append a
    # request Origin header"), which Django's CSRF check rightly refuses. The site-wide policy
    # (same-origin) keeps even this token-less URL inside the portal.
    return render(request, "recovery/reset.html", {"form": form, "strength_for": "new_password"})
