from django import forms

from portail.accounts.widgets import password_field

PASSWORDS_DIFFER = "Les deux mots de passe ne concordent pas."


def identifier_field(**extra_attrs):
    return forms.CharField(
        label="Identifiant",
        max_length=254,
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


class LostPasswordForm(forms.Form):
    identifier = identifier_field(autofocus=True)


class LostIdentifierForm(forms.Form):
    email = forms.EmailField(
        label="Adresse de messagerie",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class IdentifierDetailsForm(forms.Form):
    """Second step when several accounts share the address: the first name, maybe the school."""

    first_name = forms.CharField(
        label="Prénom",
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "given-name", "autofocus": True}),
    )
    structure = forms.TypedChoiceField(label="Établissement", coerce=int, required=False)

    def __init__(self, *args, structures=(), ask_structure=False, **kwargs):
        super().__init__(*args, **kwargs)
        if ask_structure:
            self.fields["structure"].choices = [("", "Choisissez l'établissement"), *structures]
            self.fields["structure"].required = True
        else:
            del self.fields["structure"]


class ResetPasswordForm(forms.Form):
    identifier = identifier_field(autofocus=True)
    new_password = password_field("Nouveau mot de passe", autocomplete="new-password")
    new_password_confirm = password_field(
        "Confirmation du nouveau mot de passe", autocomplete="new-password"
    )

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("new_password"), cleaned.get("new_password_confirm")
        if first is not None and second is not None and first != second:
            self.add_error("new_password_confirm", PASSWORDS_DIFFER)
        return cleaned
