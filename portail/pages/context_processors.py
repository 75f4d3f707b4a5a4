from django.conf import settings

from .brand import ACCESSIBILITY_STATUSES


def brand(request):
    """The brand every page shows: the region's name (« ENT » alone by default), logo, footer."""
    region = (getattr(settings, "PORTAIL_REGION_NAME", "") or "").strip()
    return {
        "brand": {
            "region": region,
            "name": f"ENT {region}" if region else "ENT",
            "has_logo": bool(getattr(settings, "PORTAIL_LOGO", "")),
            "accessibility": ACCESSIBILITY_STATUSES[settings.PORTAIL_ACCESSIBILITY_STATUS],
        }
    }
