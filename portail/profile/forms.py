"""The account page's forms: change the password, change the email and mobile."""

from django import forms

from portail.accounts.forms import UserNewPasswordMixin, email_field, new_password_fields
from portail.accounts.phones import MobileField
from portail.accounts.widgets import password_field


def current_password_field(label="Mot de passe actuel"):
    field = password_field(label, autocomplete="current-password")
    field.error_messages["required"] = "Saisissez votre mot de passe actuel."
    return field


class PasswordChangeForm(UserNewPasswordMixin, forms.Form):
    prefix = "password"
    current_password = current_password_field()
    new_password, new_password2 = new_password_fields()


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
