"""/compte/ — "Mon compte": who I am, my password, email and mobile, my connections and sessions."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portail.accounts.forms import weak_password_message
from portail.accounts.phones import display_mobile
from portail.accounts.services import WeakPassword
from portail.security import ratelimit
from portail.security.views import rate_limited

from . import services as account_services
from . import sessions
from .devices import describe
from .forms import ContactChangeForm, PasswordChangeForm


@login_required
def account(request):
    return _page(request)


@login_required
@require_POST
def change_password(request):
    return _change(request, PasswordChangeForm(request.user, request.POST), _change_password)


@login_required
@require_POST
def change_contact(request):
    return _change(request, ContactChangeForm(request.user, request.POST), _change_contact)


@login_required
@require_POST
def end_other_sessions(request):
    ended = sessions.end_other_sessions(request, request.user)
    if ended:
        messages.success(
            request,
            f"{ended} autre{'s' if ended > 1 else ''} session{'s' if ended > 1 else ''} "
            f"{'ont' if ended > 1 else 'a'} été fermée{'s' if ended > 1 else ''}. "
            "Seul cet appareil reste connecté.",
        )
    else:
        messages.info(request, "Aucune autre session n\u2019était ouverte.")
    return redirect(reverse("account:account") + "#sessions")


def _change_password(request, data):
    account_services.change_password(
        request,
        request.user,
        current_password=data["current_password"],
        new_password=data["new_password"],
    )
    return "Votre mot de passe a été modifié."


def _change_contact(request, data):
    changed = account_services.change_contact(
        request,
        request.user,
        current_password=data["current_password"],
        email=data["email"],
        phone=data["phone"],
    )
    return _contact_message(changed)


def _change(request, form, operation):
    """Run `operation(request, cleaned_data)` (it returns the success message) for a valid form;
    otherwise, or when refused, the page again with this form's errors."""
    if form.is_valid():
        try:
            message = operation(request, form.cleaned_data)
        except ratelimit.RateLimited as exc:
            return rate_limited(request, exc)
        except account_services.WrongCurrentPassword as exc:
            form.add_error("current_password", exc.message)
        except WeakPassword as exc:  # only a new password can be weak
            form.add_error("new_password", weak_password_message(exc.errors))
        else:
            messages.success(request, message)
            return redirect("account:account")
    # The prefix names the form in the page: password_form, contact_form.
    return _page(request, **{f"{form.prefix}_form": form})


def _contact_message(changed):
    if changed == ["email"]:
        return "Votre adresse de messagerie a été modifiée."
    if changed == ["phone"]:
        return "Votre numéro de téléphone mobile a été modifié."
    if changed:
        return "Votre adresse de messagerie et votre numéro de téléphone mobile ont été modifiés."
    return "Aucune modification : vos coordonnées étaient déjà celles-ci."


def _page(request, *, password_form=None, contact_form=None, status=200):
    user = request.user
    return render(
        request,
        "accounts/account.html",
        {
            "structures": user.structures.all(),
            "classes": user.classes.select_related("structure"),
            "phone_display": display_mobile(user.phone),
            "password_form": password_form or PasswordChangeForm(user),
            "contact_form": contact_form or ContactChangeForm(user),
            "strength_for": "new_password",
            "logins": account_services.recent_logins(user),
            "open_sessions": [
                {"session": s, "device": describe(s.user_agent)}
                for s in sessions.open_sessions(request, user)
            ],
        },
        status=status,
    )
