"""/compte/ — "Mon compte": who I am, and my password, email and mobile."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portail.security import ratelimit
from portail.security.views import rate_limited

from . import account_services
from .account_forms import ContactChangeForm, PasswordChangeForm
from .forms import weak_password_message
from .phones import display_mobile
from .services import WeakPassword


@login_required
def account(request):
    return _page(request)


@login_required
@require_POST
def change_password(request):
    form = PasswordChangeForm(request.user, request.POST)
    if form.is_valid():
        try:
            account_services.change_password(
                request,
                request.user,
                current_password=form.cleaned_data["current_password"],
                new_password=form.cleaned_data["new_password"],
            )
        except ratelimit.RateLimited as exc:
            return rate_limited(request, exc)
        except account_services.WrongCurrentPassword as exc:
            form.add_error("current_password", exc.message)
        except WeakPassword as exc:
            form.add_error("new_password", weak_password_message(exc.errors))
        else:
            messages.success(request, "Votre mot de passe a été modifié.")
            return redirect("account:account")
    return _page(request, password_form=form)


@login_required
@require_POST
def change_contact(request):
    form = ContactChangeForm(request.user, request.POST)
    if form.is_valid():
        try:
            changed = account_services.change_contact(
                request,
                request.user,
                current_password=form.cleaned_data["current_password"],
                email=form.cleaned_data["email"],
                phone=form.cleaned_data["phone"],
            )
        except ratelimit.RateLimited as exc:
            return rate_limited(request, exc)
        except account_services.WrongCurrentPassword as exc:
            form.add_error("current_password", exc.message)
        else:
            messages.success(request, _contact_message(changed))
            return redirect("account:account")
    return _page(request, contact_form=form)


def _contact_message(changed):
    if changed == ["email"]:
        return "Votre adresse de messagerie a été modifiée."
    if changed == ["phone"]:
        return "Votre numéro de téléphone mobile a été modifié."
    if changed:
        return "Votre adresse de messagerie et votre numéro de téléphone mobile ont été modifiés."
    return "Aucune modification : vos coordonnées étaient déjà celles-ci."


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
        },
        status=status,
    )
