from django import forms

from .widgets import password_field


class LoginForm(forms.Form):
    identifier = forms.CharField(
        label="Identifiant",
        max_length=254,
        strip=False,  # folded by the service, which forgives spaces, capitals and accents
        widget=forms.TextInput(
            attrs={
                "autocomplete": "username",
                "autocapitalize": "none",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )
    password = password_field("Mot de passe")
    remember = forms.BooleanField(label="Se souvenir de moi", required=False)
