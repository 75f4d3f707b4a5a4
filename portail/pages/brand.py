"""The region's brand: name, logo, primary colour — read once from settings, checked at startup.

Pure Python (no Django import): settings.py calls `check_primary_colour` while it loads, so a colour
that white text cannot be read on stops the portal with a clear message instead of shipping it.
"""

import re

DEFAULT_PRIMARY = "#1d4f91"  # a calm blue: 8.3:1 with white
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
# WCAG 2.1 SC 1.4.3 (RGAA 3.2): text contrast at least 4.5:1 at level AA.
MIN_CONTRAST = 4.5


class BrandError(ValueError):
    pass


def _channels(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def relative_luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of an sRGB hex colour."""

    def linear(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _channels(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = relative_luminance(a), relative_luminance(b)
    light, dark = max(la, lb), min(la, lb)
    return (light + 0.05) / (dark + 0.05)


def darken(colour: str, factor: float = 0.8) -> str:
    r, g, b = (round(c * factor) for c in _channels(colour))
    return f"#{r:02x}{g:02x}{b:02x}"


def check_primary_colour(value: str) -> str:
    """The configured PORTAIL_COLOR_PRIMARY, normalised to #rrggbb, or BrandError in French+English."""
    value = (value or "").strip() or DEFAULT_PRIMARY
    if not _HEX.match(value):
        raise BrandError(
            f"PORTAIL_COLOR_PRIMARY={value!r} n'est pas une couleur hexadécimale "
            "(attendu : #1d4f91 ou #15a) / is not a hex colour."
        )
    r, g, b = _channels(value)
    value = f"#{r:02x}{g:02x}{b:02x}"
    ratio = contrast(value, "#ffffff")
    if ratio < MIN_CONTRAST:
        raise BrandError(
            f"PORTAIL_COLOR_PRIMARY={value} : contraste avec le blanc de {ratio:.2f}:1, "
            f"il faut au moins {MIN_CONTRAST}:1 (WCAG 1.4.3, RGAA 3.2) ; choisissez une teinte "
            "plus foncée / contrast with white text is too low."
        )
    return value


ACCESSIBILITY_STATUSES = {
    "non": "non conforme",
    "partiellement": "partiellement conforme",
    "totalement": "totalement conforme",
}


def check_accessibility_status(value: str) -> str:
    value = (value or "").strip().lower() or "partiellement"
    if value not in ACCESSIBILITY_STATUSES:
        raise BrandError(
            f"PORTAIL_ACCESSIBILITY_STATUS={value!r} : valeurs possibles « non », "
            "« partiellement » ou « totalement »."
        )
    return value
