from django import template

from .. import educonnect, franceconnect
from ..models import FranceConnectLink

register = template.Library()


@register.simple_tag
def federation_buttons():
    return {"educonnect": educonnect.enabled(), "franceconnect": franceconnect.enabled()}


@register.simple_tag
def franceconnect_link_of(user):
    if not getattr(user, "is_authenticated", False):
        return None
    return FranceConnectLink.objects.filter(user=user).first()
