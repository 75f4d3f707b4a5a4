from django import forms

from portail.accounts.forms import NewPasswordMixin, identifier_field, new_password_fields


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


class ResetPasswordForm(NewPasswordMixin, forms.Form):
    # The policy is checked by the service (set_new_password raises WeakPassword), not here.
    confirm_field = "new_password_confirm"

    identifier = identifier_field(autofocus=True)
    new_password, new_password_confirm = new_password_fields()
