"""The account page's forms: change the password, change the email and mobile."""

from django import forms

from portail.activation.forms import NewPasswordMixin, email_field, new_password_fields

from .phones import MobileField
from .widgets import password_field


def current_password_field(label="Mot de passe actuel"):
    field = password_field(label, autocomplete="current-password")
    field.error_messages["required"] = "Saisissez votre mot de passe actuel."
    return field


class PasswordChangeForm(NewPasswordMixin, forms.Form):
    prefix = "password"
    current_password = current_password_field()
    new_password, new_password2 = new_password_fields()

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        self.fields["new_password"].error_messages["required"] = (
            "Choisissez votre nouveau mot de passe."
        )
        self.fields["new_password2"].error_messages["required"] = (
            "Saisissez une seconde fois le nouveau mot de passe."
        )


class ContactChangeForm(forms.Form):
    prefix = "contact"
    email = email_field()
    phone = MobileField()
    current_password = current_password_field(
        "Mot de passe actuel (pour confirmer la modification)"
    )

    def __init__(self, user, *args, **kwargs):
        self.user = user
        kwargs.setdefault("initial", {"email": user.email, "phone": user.phone})
        super().__init__(*args, **kwargs)
