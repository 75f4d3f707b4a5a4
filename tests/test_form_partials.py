"""The shared form partials (partials/field.html, partials/error_summary.html): every form using
them — public pages, console, « Mon compte » — gets the error summary and tied fields."""

import re

from django import forms
from django.template.loader import render_to_string

from tests.helpers import normalised


class CodeForm(forms.Form):
    identifier = forms.CharField(
        label="Identifiant", widget=forms.TextInput(attrs={"autofocus": True})
    )
    code = forms.CharField(
        label="Code",
        help_text="Le code à 6 chiffres de votre application.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )

    def clean(self):
        raise forms.ValidationError("Ce code n’est pas le bon.")


def render(form):
    html = render_to_string("partials/form_errors.html", {"form": form})
    for name in form.fields:
        html += render_to_string("partials/field.html", {"field": form[name]})
    return html


def test_an_unbound_form_has_no_summary_and_no_invalid_field():
    html = render(CodeForm())
    assert "error-summary" not in html and "aria-invalid" not in html
    assert "autofocus" in html
    assert 'aria-describedby="id_code_helptext"' in html


def test_errors_make_a_focusable_summary_linking_each_field():
    form = CodeForm(data={"identifier": "jean.dupont", "code": ""})
    assert not form.is_valid()
    html = normalised(render(form))
    assert 'class="error-summary" id="resume-erreurs" role="alert" tabindex="-1"' in html
    assert "Erreur : 2 points à corriger" in html
    # The form-wide error first, linked to the first field; then the field's own.
    links = re.findall(r'<a href="(#[^"]+)" data-error-link[^>]*>([^<]+)</a>', html)
    assert links == [
        ("#id_identifier", "Ce code n'est pas le bon."),
        ("#id_code", "Ce champ est obligatoire."),
    ]


def test_a_field_in_error_is_invalid_and_names_its_hint_and_its_message():
    form = CodeForm(data={"identifier": "jean.dupont", "code": "123"})
    form.is_valid()
    html = render(form)
    code = re.search(r"<input[^>]*name=\"code\"[^>]*>", html).group(0)
    assert 'aria-invalid="true"' not in code  # only the form-wide error, about the first field
    identifier = re.search(r"<input[^>]*name=\"identifier\"[^>]*>", html).group(0)
    assert (
        'aria-invalid="true"' in identifier and 'aria-describedby="resume-erreurs-1"' in identifier
    )
    assert 'value="jean.dupont"' in identifier  # what was typed stays
    assert "autofocus" not in identifier  # focus goes to the summary


def test_a_wrong_one_time_code_is_emptied():
    form = CodeForm(data={"identifier": "jean.dupont", "code": "123456"})
    form.is_valid()
    code = re.search(r"<input[^>]*name=\"code\"[^>]*>", render(form)).group(0)
    assert "123456" not in code and 'autocomplete="one-time-code"' in code


def test_a_fields_own_error_is_tied_to_it():
    class Form(forms.Form):
        email = forms.EmailField(label="Adresse", help_text="Pour vous écrire.")

    form = Form(data={"email": "pas-une-adresse"})
    form.is_valid()
    html = render(form)
    email = re.search(r"<input[^>]*name=\"email\"[^>]*>", html).group(0)
    assert 'aria-invalid="true"' in email
    assert 'aria-describedby="id_email_helptext id_email_error"' in email
    assert '<ul class="errorlist error-message" id="id_email_error">' in html
