"""« Envoyer les identifiants par courriel » (issue 12): preview, confirm, report.

The selection is the letters page's (a class, a profile, « non activés ») or one account's page;
only accounts not yet activated can receive credentials. The sending itself is one domain
operation, activation.credentials.send_credentials: tokens and mails are queued in bulk, the
page never waits on the relay.
"""

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.shortcuts import render
from django.urls import reverse

from portail.accounts.models import Profile, State
from portail.activation import credentials

from . import scoping
from .forms import ScopedForm
from .views import _letters_selection, console_view


class CredentialsForm(ScopedForm):
    school_class = forms.ModelChoiceField(
        label="Classe", required=False, queryset=None, empty_label="Toutes"
    )
    profile = forms.ChoiceField(
        label="Profil", required=False, choices=[("", "Tous")] + Profile.choices
    )
    compte = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    resend = forms.BooleanField(
        label="Renvoyer aussi aux comptes déjà destinataires il y a moins de 24 h",
        required=False,
    )


def _selection(actor, data):
    if data.get("compte"):
        account = scoping.get_visible_account(actor, data["compte"])  # 404 outside the scope
        return scoping.visible_accounts(actor).filter(pk=account.pk), account
    # Only accounts still to activate can receive their credentials (the « non activés »).
    accounts = _letters_selection(actor, {**data, "only_pending": True})
    return accounts.filter(state=State.PENDING), None


@console_view
def send_credentials(request):
    data = request.POST if request.method == "POST" else request.GET
    form = CredentialsForm(data, actor=request.user)
    if not form.is_valid():
        return render(request, "console/credentials.html", {"form": form, "invalid": True})
    accounts, single = _selection(request.user, form.cleaned_data)
    resend = form.cleaned_data["resend"]
    selection = {
        k: v
        for k, v in (
            ("school_class", data.get("school_class", "")),
            ("profile", data.get("profile", "")),
            ("compte", data.get("compte", "")),
        )
        if v
    }
    letters_query = {k: v for k, v in selection.items() if k in ("school_class", "profile")} | {
        "only_pending": "on"
    }
    context = {
        "form": form,
        "single": single,
        "selection": list(selection.items()),
        "letters_url": reverse("console:letters") + "?" + urlencode(letters_query),
        "hours": settings.PORTAIL_CREDENTIALS_RESEND_HOURS,
    }
    if request.method != "POST":
        context["report"] = credentials.plan(accounts, resend=resend)
        return render(request, "console/credentials.html", context)
    context["report"] = credentials.send_credentials(
        request.user, accounts, resend=resend, request=request
    )
    return render(request, "console/credentials_report.html", context)
