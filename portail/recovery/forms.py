from django import forms

from portail.accounts.forms import (
    INVALID_EMAIL,
    NewPasswordMixin,
    identifier_field,
    new_password_fields,
)


class LostPasswordForm(forms.Form):
    identifier = identifier_field(autofocus=True)


class LostIdentifierForm(forms.Form):
    email = forms.EmailField(
        label="Adresse de messagerie",
        max_length=254,
        error_messages={
            "required": "Indiquez l’adresse de messagerie donnée lors de la première connexion.",
            "invalid": INVALID_EMAIL,
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class IdentifierDetailsForm(forms.Form):
    """Second step when several accounts share the address: the first name only.

    No list of schools: offering the schools of the address's accounts would tell anyone who
    types a family's address where its children go (issue 7 §4). The mail carries them.
    """

    first_name = forms.CharField(
        label="Prénom",
        max_length=150,
        error_messages={"required": "Indiquez le prénom du compte recherché."},
        widget=forms.TextInput(attrs={"autocomplete": "given-name", "autofocus": True}),
    )


class ResetPasswordForm(NewPasswordMixin, forms.Form):
    # The policy is checked by the service (set_new_password raises WeakPassword), not here.
    confirm_field = "new_password_confirm"

    identifier = identifier_field(autofocus=True)
    new_password, new_password_confirm = new_password_fields()
