from django import forms

from portail.accounts.forms import UserNewPasswordMixin, email_field, new_password_fields
from portail.accounts.phones import MobileField


class ActivationForm(UserNewPasswordMixin, forms.Form):
    new_password, new_password2 = new_password_fields()
    email = email_field()
    phone = MobileField()
    charter = forms.BooleanField(
        label="J’accepte la charte d’utilisation de l’ENT",
        error_messages={
            "required": "Pour utiliser l’ENT, vous devez accepter sa charte d’utilisation."
        },
    )
