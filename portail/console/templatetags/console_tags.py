"""The console's template helpers: which section a page belongs to, French class names."""

import re

from django import template
from django.utils.safestring import mark_safe

from ..journal import class_name

register = template.Library()

# URL name -> the navigation entry it belongs to (aria-current="page" on that entry).
SECTIONS = {
    "search": "search",
    "account": "search",
    "block": "search",
    "unblock": "search",
    "new_code": "search",
    "send_reset": "search",
    "change_identifier": "search",
    "rename": "search",
    "link": "search",
    "unlink": "search",
    "import": "import",
    "import_template": "import",
    "letters": "letters",
    "letters_download": "letters",
    "letters_ready": "letters",
    "send_credentials": "letters",
    "audit": "audit",
    "duplicates": "duplicates",
    "merge_duplicate": "duplicates",
    "referents": "referents",
    "structure_referents": "referents",
    "appoint_referent": "referents",
    "dismiss_referent": "referents",
    "failed_mails": "mails",
}


@register.simple_tag(takes_context=True)
def current(context, section):
    """aria-current="page" when the page being shown belongs to `section`."""
    match = getattr(context.get("request"), "resolver_match", None)
    if match is not None and SECTIONS.get(match.url_name) == section:
        return mark_safe('aria-current="page"')  # noqa: S308 (a constant)
    return ""


@register.filter
def classe(name):
    """« 2nde 3 » → « 2de 3 »: French typography of a class name."""
    return class_name(name)


@register.filter
def class_names(classes):
    return ", ".join(class_name(c.name) for c in classes)


_BEFORE = re.compile(r" ([:;!?»])")


@register.filter
def fr(text):
    """French typography of a message made elsewhere (the importer's reasons): a non-breaking
    space before « : ; ! ? » and inside « »."""
    return _BEFORE.sub("\u00a0\\1", str(text)).replace("« ", "«\u00a0")
