"""The login form, and the fields and checks every account form shares (login, first connection,
password reset, account page)."""

from django import forms

from .passwords import evaluate_for_user
from .widgets import password_field

PASSWORDS_DIFFER = "Les deux mots de passe ne concordent pas."
INVALID_EMAIL = "Cette adresse de messagerie n’est pas valide. Exemple : prenom.nom@exemple.fr."


def identifier_field(**extra_attrs):
    return forms.CharField(
        label="Identifiant",
        max_length=254,
        error_messages={"required": "Indiquez votre identifiant."},
        strip=False,  # folded by the service, which forgives spaces, capitals and accents
        widget=forms.TextInput(
            attrs={
                "autocomplete": "username",
                "autocapitalize": "none",
                "spellcheck": "false",
                **extra_attrs,
            }
        ),
    )


def email_field(label="Adresse de messagerie"):
    return forms.EmailField(
        label=label,
        max_length=254,
        help_text="Elle servira à vous renvoyer votre identifiant ou un nouveau mot de passe.",
        error_messages={
            "required": "Indiquez votre adresse de messagerie.",
            "invalid": INVALID_EMAIL,
        },
        widget=forms.EmailInput(
            attrs={"autocomplete": "email", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )


def new_password_fields():
    """ "Nouveau mot de passe" and its confirmation, each saying so when it is left empty."""
    first = password_field("Nouveau mot de passe", autocomplete="new-password")
    second = password_field("Confirmation du nouveau mot de passe", autocomplete="new-password")
    first.error_messages["required"] = "Choisissez votre nouveau mot de passe."
    second.error_messages["required"] = "Saisissez une seconde fois le nouveau mot de passe."
    return first, second


def weak_password_message(errors):
    """The error under "Nouveau mot de passe" for a password the policy refuses."""
    return "Sécurité : Faible. " + " ".join(errors)


class NewPasswordMixin:
    """The new password typed twice (fields `new_password` and `confirm_field`): they must match."""

    confirm_field = "new_password2"

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("new_password"), cleaned.get(self.confirm_field)
        if first is not None and second is not None and first != second:
            self.add_error(self.confirm_field, PASSWORDS_DIFFER)
        return cleaned


class UserNewPasswordMixin(NewPasswordMixin):
    """...and judged in the form by the one policy function for `user`, the form's first argument."""

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_new_password(self):
        password = self.cleaned_data["new_password"]
        strength = evaluate_for_user(password, self.user)
        if not strength.acceptable:
            raise forms.ValidationError(weak_password_message(strength.errors))
        return password


class LoginForm(forms.Form):
    identifier = identifier_field(autofocus=True)
    password = password_field("Mot de passe")
    # A wrong identifier or password is about both fields (partials/error_summary.html).
    non_field_error_fields = ("identifier", "password")
    remember = forms.BooleanField(label="Se souvenir de moi", required=False)
