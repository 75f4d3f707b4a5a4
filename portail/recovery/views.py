from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from portail.accounts.services import DomainError, WeakPassword
from portail.activation.services import save_session_after_commit
from portail.security import sealing, throttle

from . import services
from .forms import IdentifierDetailsForm, LostIdentifierForm, LostPasswordForm, ResetPasswordForm

# Over an address's budget (PORTAIL_RATE_LIMITS "recovery:…" and "reset:…"), its untrusted
# devices solve the login's proof-of-work challenge before a request is served: a flooding pupil
# slows the school's untrusted browsers by a second, never shuts recovery (issue 7 §2).
CHALLENGE_MESSAGE = (
    "Par sécurité, de nombreuses demandes venant de votre réseau imposent une vérification "
    "automatique de votre navigateur. Validez de nouveau votre demande : la vérification se fait "
    "toute seule, en quelques secondes."
)
# A reset link opened over budget by an untrusted device: kept sealed in the session (never in
# the clear, never in a URL) until the reset form comes back with the solved challenge.
SESSION_PENDING_LINK = "reset_pending_link"
_PENDING_PURPOSE = "recovery.pending-link"


def _challenge_passed(request, page: str) -> bool:
    """A POST may be served: no challenge is needed here, or it carries a fresh solution (spent
    now). Decided on the address and the device, never on the account (neutral mode)."""
    return not throttle.require_challenge(request, page) or throttle.solved_challenge(request)


def _page(request, template, page: str, context: dict):
    """Render a recovery form, with the challenge widget when this browser needs it."""
    if throttle.require_challenge(request, page):
        context = {**context, "challenge": throttle.new_challenge(), "challenge_for": "request"}
    return render(request, template, context)


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
        if not _challenge_passed(request, "recovery"):
            form.add_error(None, CHALLENGE_MESSAGE)
            return _page(request, "recovery/lost_password.html", "recovery", {"form": form})
        try:
            services.request_password_reset(request, form.cleaned_data["identifier"])
        except services.MailJustSent as exc:
            return _answer(request, form, sent_message=exc.message)
        except DomainError as exc:
            if neutral := _answer(request, form, refusal=exc):
                return neutral
        else:
            return _answer(request, form, sent_message=services.RESET_SENT_MESSAGE)
    return _page(request, "recovery/lost_password.html", "recovery", {"form": form})


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
        if not _challenge_passed(request, "recovery"):
            form.add_error(None, CHALLENGE_MESSAGE)
            return _page(request, "recovery/lost_identifier.html", "recovery", {"form": form})
        email = form.cleaned_data["email"]
        try:
            services.send_identifier_reminder(request, email)
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
    return _page(request, "recovery/lost_identifier.html", "recovery", {"form": form})


@require_http_methods(["GET", "POST"])
def lost_identifier_details(request):
    """Several accounts share the address: the first name, then one answer whatever it is."""
    email = request.session.get(services.SESSION_IDENTIFIER_EMAIL)
    if not email or len(services.identifier_candidates(email)) < 2:
        return redirect("recovery:lost_identifier")
    template = "recovery/lost_identifier_details.html"
    form = IdentifierDetailsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if not _challenge_passed(request, "recovery"):
            form.add_error(None, CHALLENGE_MESSAGE)
            return _page(request, template, "recovery", {"form": form})
        try:
            services.send_identifier_reminder(
                request, email, first_name=form.cleaned_data["first_name"]
            )
        except services.MailJustSent as exc:
            message = exc.message
        except DomainError as exc:  # the accounts changed since the first step
            form.add_error(None, exc.message)
            return render(request, template, {"form": form})
        else:
            # The same words whether the first name matched or not: only the mail tells.
            message = services.DETAILS_SENT_MESSAGE
        del request.session[services.SESSION_IDENTIFIER_EMAIL]
        return _sent(request, message, reverse("recovery:lost_identifier"))
    return _page(request, template, "recovery", {"form": form})


@require_http_methods(["GET"])
def reset_link(request, token):
    """The link of the email: check the token, move it into the session, drop it from the URL.

    Over the address's "reset" budget, an untrusted device's link is not checked yet: it waits,
    sealed in the session, for the reset form to come back with the solved challenge."""
    if throttle.require_challenge(request, "reset"):
        request.session[SESSION_PENDING_LINK] = sealing.seal(_PENDING_PURPOSE, token[:256])
        return _no_referrer(redirect("recovery:reset"))
    try:
        services.open_reset_link(request, token)
    except DomainError as exc:
        return _invalid_link(request, exc)
    return _no_referrer(redirect("recovery:reset"))


def _open_pending_link(request):
    """Open the link that waited for the challenge (see reset_link); DomainError if it cannot."""
    sealed = request.session.pop(SESSION_PENDING_LINK)
    try:
        secret = sealing.unseal(_PENDING_PURPOSE, sealed)
    except sealing.Unreadable:  # SECRET_KEY rotated meanwhile
        raise services.TokenInvalid from None
    services.open_reset_link(request, secret)


@require_http_methods(["GET", "POST"])
def reset(request):
    needs_challenge = throttle.require_challenge(request, "reset")
    pending = SESSION_PENDING_LINK in request.session
    try:
        if pending and not needs_challenge:  # the address's budget came back meanwhile
            _open_pending_link(request)
            pending = False
        if not pending:
            services.current_reset_link(request)
    except DomainError as exc:
        return _invalid_link(request, exc)
    form = ResetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if needs_challenge and not throttle.solved_challenge(request):
            form.add_error(None, CHALLENGE_MESSAGE)
        else:
            try:
                if pending:
                    _open_pending_link(request)
                services.reset_password(
                    request, form.cleaned_data["identifier"], form.cleaned_data["new_password"]
                )
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
    return _page(
        request, "recovery/reset.html", "reset", {"form": form, "strength_for": "new_password"}
    )
