"""Django admin for the regional administrator: applications (tiles, CAS registry) and OIDC clients."""

from django import forms
from django.contrib import admin
from oauth2_provider.models import AbstractApplication

from portail.accounts.models import Profile

from .models import ATTRIBUTES, Application


class ApplicationForm(forms.ModelForm):
    url = forms.URLField(
        label="Adresse d'entrée",
        max_length=500,
        assume_scheme="https",
        help_text="Où mène la tuile.",
    )
    oidc_backchannel_logout_uri = forms.URLField(
        label="Adresse de déconnexion back-channel (OIDC)",
        max_length=500,
        required=False,
        assume_scheme="https",
    )
    profiles = forms.MultipleChoiceField(
        label="Profils autorisés",
        choices=Profile.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    released_attributes = forms.MultipleChoiceField(
        label="Attributs transmis (CAS) et revendications (OpenID Connect)",
        choices=list(ATTRIBUTES.items()),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = Application
        fields = [
            "name",
            "short_label",
            "description",
            "url",
            "enabled",
            "position",
            "profiles",
            "structures",
            "kind",
            "released_attributes",
            "cas_service_patterns",
            "cas_allow_proxy",
            "cas_single_logout",
            "cas_rest_enabled",
            "oidc_client",
            "oidc_backchannel_logout_uri",
        ]


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    form = ApplicationForm
    list_display = ["name", "kind", "enabled", "position"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "url"]
    filter_horizontal = ["structures"]
    fieldsets = [
        (None, {"fields": ["name", "short_label", "description", "url", "enabled", "position"]}),
        ("Qui voit la tuile", {"fields": ["profiles", "structures"]}),
        ("Authentification", {"fields": ["kind", "released_attributes"]}),
        (
            "CAS",
            {
                "fields": [
                    "cas_service_patterns",
                    "cas_allow_proxy",
                    "cas_single_logout",
                    "cas_rest_enabled",
                ]
            },
        ),
        ("OpenID Connect", {"fields": ["oidc_client", "oidc_backchannel_logout_uri"]}),
    ]


class OIDCClientForm(forms.ModelForm):
    """Only what Portail allows: the authorization code flow (with PKCE), RS256 ID tokens."""

    def clean(self):
        data = super().clean()
        if data.get("authorization_grant_type") != AbstractApplication.GRANT_AUTHORIZATION_CODE:
            self.add_error(
                "authorization_grant_type",
                "Seul le flux « Authorization code » (avec PKCE) est autorisé.",
            )
        if data.get("algorithm") != AbstractApplication.RS256_ALGORITHM:
            self.add_error("algorithm", "Les jetons d'identité sont signés en RS256.")
        # No consent screen: the region chooses the applications, not the pupils, and who may
        # use one is Application.is_available_to's decision.
        data["skip_authorization"] = True
        self.instance.skip_authorization = True
        return data


class OIDCClientAdmin(admin.ModelAdmin):
    """django-oauth-toolkit's Application, through settings OAUTH2_PROVIDER APPLICATION_ADMIN_CLASS."""

    form = OIDCClientForm
    list_display = ["name", "client_id", "client_type", "authorization_grant_type"]
    search_fields = ["name", "client_id"]
    raw_id_fields = ["user"]
