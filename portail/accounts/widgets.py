from django import forms


class PasswordInput(forms.PasswordInput):
    """A password input followed by the eye button that shows it in clear (static/js/password.js)."""

    template_name = "widgets/password.html"


def password_field(label, *, autocomplete="current-password", help_text=""):
    return forms.CharField(
        label=label,
        strip=False,
        help_text=help_text,
        error_messages={"required": "Indiquez votre mot de passe."},
        widget=PasswordInput(
            attrs={"autocomplete": autocomplete, "autocapitalize": "none", "spellcheck": "false"}
        ),
    )
