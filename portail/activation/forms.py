from django import forms

from portail.accounts.passwords import evaluate_for_user
from portail.accounts.phones import MobileField
from portail.accounts.widgets import password_field

PASSWORDS_DIFFER = "Les deux mots de passe ne concordent pas."
INVALID_EMAIL = "Cette adresse de messagerie n'est pas valide. Exemple : prenom.nom@exemple.fr."


class NewPasswordMixin:
    """ "Nouveau mot de passe" twice, judged by the one policy function for `self.user`."""

    def clean_new_password(self):
        password = self.cleaned_data["new_password"]
        strength = evaluate_for_user(password, self.user)
        if not strength.acceptable:
            raise forms.ValidationError("Sécurité : Faible. " + " ".join(strength.errors))
        return password

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("new_password"), cleaned.get("new_password2")
        if first is not None and second is not None and first != second:
            self.add_error("new_password2", PASSWORDS_DIFFER)
        return cleaned


def new_password_fields():
    return (
        password_field("Nouveau mot de passe", autocomplete="new-password"),
        password_field("Confirmation du nouveau mot de passe", autocomplete="new-password"),
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


class ActivationForm(NewPasswordMixin, forms.Form):
    new_password, new_password2 = new_password_fields()
    email = email_field()
    phone = MobileField()
    charter = forms.BooleanField(
        label="J'accepte la charte d'utilisation de l'ENT",
        error_messages={
            "required": "Pour utiliser l'ENT, vous devez accepter sa charte d'utilisation."
        },
    )

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        self.fields["new_password2"].error_messages["required"] = (
            "Saisissez une seconde fois le nouveau mot de passe."
        )
        self.fields["new_password"].error_messages["required"] = (
            "Choisissez votre nouveau mot de passe."
        )
