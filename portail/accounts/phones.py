"""Mobile numbers: typed the French way ("06 12 34 56 78"), stored E.164 ("+33612345678")."""

import phonenumbers
from django import forms

DEFAULT_REGION = "FR"  # numbers typed without +XX are French
INVALID_MOBILE = (
    "Ce numéro de téléphone mobile n’est pas valide. Exemple : 06 12 34 56 78 ou +33 6 12 34 56 78."
)
# A landline cannot receive the texts a mobile is given for. Where a plan cannot tell the two
# apart (North America), the number is accepted.
_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


def parse_mobile(typed: str) -> str:
    """The E.164 form of a typed mobile number; ValueError when it is not one."""
    try:
        number = phonenumbers.parse(typed, DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(typed) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(typed)
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise ValueError(typed)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_mobile(e164: str) -> str:
    """ "+33612345678" -> "06 12 34 56 78"; foreign numbers keep their international form."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if phonenumbers.region_code_for_number(number) == DEFAULT_REGION:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


class MobileField(forms.CharField):
    """Optional by default; cleans to E.164 or "" (no number)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Téléphone mobile")
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault(
            "widget",
            forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel", "type": "tel"}),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        # Initial values come from the model in E.164: show them as the user would type them.
        if isinstance(value, str) and value.startswith("+"):
            return display_mobile(value)
        return value

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return ""
        try:
            return parse_mobile(value)
        except ValueError:
            raise forms.ValidationError(INVALID_MOBILE, code="invalid") from None
