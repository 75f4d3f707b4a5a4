"""Django admin: SAML service providers registered from their metadata (file or URL)."""

from django import forms
from django.contrib import admin

from portail.accounts.models import Profile

from . import services
from .models import ATTRIBUTES, ServiceProvider


class ServiceProviderForm(forms.ModelForm):
    metadata_file = forms.FileField(
        label="Fichier de métadonnées",
        required=False,
        help_text="Le fichier XML remis par le fournisseur (par exemple le GAR).",
    )
    metadata_url = forms.URLField(
        label="Adresse des métadonnées",
        max_length=500,
        required=False,
        assume_scheme="https",
        help_text="Lue par le portail à l'enregistrement (adresses publiques seulement).",
    )
    profiles = forms.MultipleChoiceField(
        label="Profils autorisés",
        choices=Profile.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    released_attributes = forms.MultipleChoiceField(
        label="Attributs transmis",
        choices=list(ATTRIBUTES.items()),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = ServiceProvider
        fields = [
            "name",
            "short_label",
            "description",
            "enabled",
            "show_tile",
            "position",
            "relay_state",
            "profiles",
            "structures",
            "metadata_xml",
            "metadata_url",
            "released_attributes",
            "name_id_format",
            "pairwise_sector",
            "encrypt_assertions",
            "require_signed_requests",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["metadata_xml"].required = False
        self.fields[
            "metadata_xml"
        ].help_text = "Rempli depuis le fichier ou l'adresse ; ou collez le XML ici."

    def clean(self):
        data = super().clean()
        upload = data.get("metadata_file")
        url = data.get("metadata_url")
        xml = data.get("metadata_xml") or ""
        if upload:
            if upload.size > services.METADATA_MAX_BYTES:
                self.add_error("metadata_file", "Fichier trop volumineux (1 Mo au plus).")
                return data
            xml = upload.read().decode("utf-8", errors="replace")
        elif url and ("metadata_url" in self.changed_data or not xml):
            try:
                xml = services.fetch_metadata(url)
            except services.SamlRefusal as exc:
                self.add_error("metadata_url", exc.message)
                return data
        if not xml.strip():
            self.add_error("metadata_xml", "Donnez les métadonnées : fichier, adresse ou XML.")
            return data
        entity_id, problem = services.metadata_problem(xml)
        if problem:
            self.add_error("metadata_xml", problem)
            return data
        others = ServiceProvider.objects.filter(entity_id=entity_id).exclude(pk=self.instance.pk)
        if others.exists():
            self.add_error("metadata_xml", f"« {entity_id} » est déjà enregistré.")
            return data
        data["metadata_xml"] = xml
        self.instance.entity_id = entity_id
        return data


@admin.register(ServiceProvider)
class ServiceProviderAdmin(admin.ModelAdmin):
    form = ServiceProviderForm
    list_display = ["name", "entity_id", "enabled", "position"]
    list_filter = ["enabled"]
    search_fields = ["name", "entity_id"]
    filter_horizontal = ["structures"]
    readonly_fields = ["entity_id"]
    fieldsets = [
        (
            None,
            {"fields": ["name", "short_label", "description", "enabled", "show_tile", "position"]},
        ),
        ("Qui peut s'y connecter", {"fields": ["profiles", "structures"]}),
        (
            "SAML",
            {
                "fields": [
                    "entity_id",
                    "metadata_file",
                    "metadata_url",
                    "metadata_xml",
                    "relay_state",
                    "released_attributes",
                    "name_id_format",
                    "pairwise_sector",
                    "encrypt_assertions",
                    "require_signed_requests",
                ]
            },
        ),
    ]
