"""The project's form renderer: every field's error is tied to its input for screen readers."""

from django.forms.boundfield import BoundField
from django.forms.renderers import TemplatesSetting


class AccessibleBoundField(BoundField):
    def build_widget_attrs(self, attrs, widget=None):
        attrs = super().build_widget_attrs(attrs, widget)
        if self.errors:
            # RGAA 11.10: an input's error message is programmatically associated with it.
            ids = [i for i in attrs.get("aria-describedby", "").split() if i]
            attrs["aria-describedby"] = " ".join([*ids, f"{self.auto_id}_error"])
            attrs["aria-invalid"] = "true"
        return attrs


class PortailFormRenderer(TemplatesSetting):
    bound_field_class = AccessibleBoundField
