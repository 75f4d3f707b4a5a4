"""The form partials' helpers: every field tied to its hint and its errors (RGAA 11.10, 11.2).

`{% field_widget field %}` renders the input with aria-invalid and aria-describedby naming its
hint, its own error list and, when the form's error is about this field too (a wrong password is
the identifier's and the password's), the error summary at the top. `{% error_summary_items form %}`
gives the summary's list: one entry per message, each linking to the field to fix.
"""

import copy

from django import template

register = template.Library()

SUMMARY_ID = "resume-erreurs"


def _non_field_targets(form):
    """Fields a form-wide error is about: form.non_field_error_fields, else the first field."""
    names = getattr(form, "non_field_error_fields", None)
    if names is None:
        names = [next(iter(form.fields), None)]
    return [n for n in names if n in form.fields]


def _visible_widget_id(bound):
    return bound.id_for_label or bound.auto_id


@register.simple_tag
def field_widget(bound):
    form = bound.form
    described = []
    if bound.help_text:
        described.append(f"{bound.auto_id}_helptext")
    invalid = bool(bound.errors)
    if bound.errors:
        described.append(f"{bound.auto_id}_error")
    if form.is_bound and form.non_field_errors() and bound.name in _non_field_targets(form):
        invalid = True
        described += [f"{SUMMARY_ID}-{n}" for n in range(1, len(form.non_field_errors()) + 1)]
    attrs = {}
    if described:
        attrs["aria-describedby"] = " ".join(described)
    if invalid:
        attrs["aria-invalid"] = "true"
    widget = bound.field.widget
    if form.is_bound and form.errors:
        # Focus goes to the error summary, not to an autofocused field.
        widget = copy.copy(widget)
        widget.attrs = {k: v for k, v in widget.attrs.items() if k != "autofocus"}
        if widget.attrs.get("autocomplete") == "one-time-code":
            # A wrong one-time code is emptied: typing the next one must not append to it.
            attrs = bound.build_widget_attrs({**attrs, "id": bound.auto_id}, widget)
            return widget.render(bound.html_name, None, attrs=attrs, renderer=form.renderer)
    return bound.as_widget(widget=widget, attrs=attrs)


@register.simple_tag
def error_summary_items(form):
    """[(href, message, id)]: the form's own errors first, then each field's, in the page's order."""
    if form is None or not getattr(form, "is_bound", False) or not form.errors:
        return []
    items = []
    targets = _non_field_targets(form)
    first = f"#{_visible_widget_id(form[targets[0]])}" if targets else f"#{SUMMARY_ID}"
    for n, message in enumerate(form.non_field_errors(), start=1):
        items.append((first, message, f"{SUMMARY_ID}-{n}"))
    for bound in form:
        if bound.is_hidden:
            continue
        for message in bound.errors:
            items.append((f"#{_visible_widget_id(bound)}", message, ""))
    return items
