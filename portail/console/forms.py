from django import forms

from portail.accounts.models import Profile

from . import scoping
from .journal import tag_choices

STATE_CHOICES = [
    ("", "Tous"),
    ("pending", "Non activé"),
    ("active", "Actif"),
    ("blocked", "Bloqué"),
    ("leaving", "Sortant"),
]


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code de vérification",
        max_length=32,
        help_text="Les 6 chiffres affichés par votre application d’authentification, "
        "ou un code de secours.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )


class ScopedForm(forms.Form):
    """A form whose class choices are limited to the actor's structures."""

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        if "school_class" in self.fields:
            self.fields["school_class"].queryset = scoping.visible_classes(actor).select_related(
                "structure"
            )


class SearchForm(ScopedForm):
    q = forms.CharField(label="Nom ou identifiant", required=False, max_length=150)
    profile = forms.ChoiceField(
        label="Profil", required=False, choices=[("", "Tous")] + Profile.choices
    )
    school_class = forms.ModelChoiceField(
        label="Classe", required=False, queryset=None, empty_label="Toutes"
    )
    state = forms.ChoiceField(label="État", required=False, choices=STATE_CHOICES)


class StructureSearchForm(forms.Form):
    q = forms.CharField(label="Nom ou UAI de l’établissement", required=False, max_length=150)


class ReferentSearchForm(forms.Form):
    q = forms.CharField(label="Nom ou identifiant", required=False, max_length=150)


PER_PAGE_CHOICES = [("1", "1 par page"), ("2", "2 par page"), ("8", "8 par page (à découper)")]


class LettersForm(ScopedForm):
    school_class = forms.ModelChoiceField(
        label="Classe", required=False, queryset=None, empty_label="Toutes"
    )
    profile = forms.ChoiceField(
        label="Profil", required=False, choices=[("", "Tous")] + Profile.choices
    )
    only_pending = forms.BooleanField(label="Seulement les comptes non activés", required=False)
    renew = forms.BooleanField(
        label="Générer de nouveaux codes pour les comptes qui ont déjà une fiche",
        help_text="Leurs fiches déjà distribuées ne fonctionneront plus. Sans cette case, ces "
        "comptes n’ont pas de nouvelle fiche ; les comptes sans code en reçoivent un.",
        required=False,
    )
    per_page = forms.TypedChoiceField(
        label="Fiches par page A4",
        choices=PER_PAGE_CHOICES,
        coerce=int,
        initial="1",
        widget=forms.RadioSelect,
    )


class LettersDownloadForm(forms.Form):
    batch = forms.CharField(max_length=64, widget=forms.HiddenInput)
    per_page = forms.TypedChoiceField(
        label="Fiches par page A4",
        choices=PER_PAGE_CHOICES,
        coerce=int,
        initial="1",
        widget=forms.RadioSelect,
    )
    output = forms.ChoiceField(choices=[("pdf", "PDF"), ("csv", "CSV")])


class IdentifierForm(forms.Form):
    identifier = forms.CharField(
        label="Nouvel identifiant",
        max_length=64,
        help_text="Minuscules sans accent, chiffres et points\u00a0; 64\u00a0caractères au plus.",
    )


class NamesForm(forms.Form):
    first_name = forms.CharField(label="Prénom", max_length=150)
    last_name = forms.CharField(label="Nom", max_length=150)


class LinkForm(forms.Form):
    other = forms.CharField(
        label="Identifiant du compte à lier",
        max_length=64,
        help_text="Le parent pour un élève, l’élève pour un parent.",
    )


class MergeForm(forms.Form):
    """Which of two accounts of one person lives on; the activated one is proposed."""

    keep = forms.TypedChoiceField(label="Compte à conserver", coerce=int, widget=forms.RadioSelect)

    def __init__(self, *args, pair, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keep"].choices = [
            (a.pk, f"{a.display_name} — {a.identifier} ({a.get_state_display()})") for a in pair
        ]
        active = [a for a in pair if a.state == "active"]
        self.fields["keep"].initial = (active or list(pair))[0].pk


class LetterCodeForm(forms.Form):
    code = forms.CharField(max_length=16, widget=forms.HiddenInput)


class AuditFilterForm(forms.Form):
    account = forms.CharField(label="Compte (identifiant)", required=False, max_length=64)
    tag = forms.ChoiceField(label="Action", required=False, choices=[("", "Toutes")])
    since = forms.DateField(
        label="Du", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="Au", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, tags=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = [("", "Toutes")] + tag_choices(tags)


# A school's own file: 1,500 people are about 150 KB; 5 MB leaves room and bounds the session copy.
IMPORT_MAX_BYTES = 5 * 1024 * 1024


class ImportForm(forms.Form):
    structure = forms.ModelChoiceField(label="Établissement", queryset=None, empty_label=None)
    profile = forms.ChoiceField(label="Profil des comptes du fichier", choices=Profile.choices)
    file = forms.FileField(
        label="Fichier CSV (modèle de la région, séparateur point-virgule)",
        help_text="Élèves : Prénom*;Nom*;Date de naissance*;Classes*. Parents : Nom*;Prénom*;… "
        "Nom de l’élève;Prénom de l’élève;Classes de l’élève.",
    )
    full = forms.BooleanField(
        label="Fichier complet : les comptes de ce profil absents du fichier deviennent sortants",
        required=False,
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["structure"].queryset = scoping.visible_structures(actor)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                "Le fichier dépasse 5 Mo : découpez-le par profil ou par classe."
            )
        return upload
