"""The public pages a French public service owes its users, and the brand's files.

Every figure of « Données personnelles » is read from the settings the portal enforces, so the
notice cannot drift from what the code does.
"""

import mimetypes
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from . import brand


def _legal():
    legal = dict(getattr(settings, "PORTAIL_LEGAL", {}))
    region = (settings.PORTAIL_REGION_NAME or "").strip()
    legal.setdefault("publisher", "")
    if not legal["publisher"]:
        legal["publisher"] = f"Région {region}" if region else ""
    return legal


@require_safe
def legal_notice(request):
    return render(request, "pages/mentions_legales.html", {"legal": _legal()})


@require_safe
def accessibility(request):
    return render(
        request,
        "pages/accessibilite.html",
        {"legal": _legal(), "status": settings.PORTAIL_ACCESSIBILITY_STATUS},
    )


def retention_periods():
    """(what, how long) — the periods the portal actually enforces, from its settings."""
    s = settings
    return [
        (
            "Journal des connexions et des actions sur les comptes",
            f"{s.PORTAIL_AUDIT_RETENTION_DAYS} jours, puis supprimé (commande « purge-audit »)",
        ),
        (
            "Session ouverte sans « Se souvenir de moi »",
            f"{s.PORTAIL_SESSION_HOURS} heures au plus, ou jusqu’à la fermeture du navigateur",
        ),
        ("Session avec « Se souvenir de moi »", f"{s.PORTAIL_REMEMBER_ME_DAYS} jours au plus"),
        ("Code d’activation (1re connexion)", f"{s.PORTAIL_ACTIVATION_CODE_DAYS} jours"),
        (
            "Lien « Activer mon compte » envoyé par courriel",
            f"{s.PORTAIL_ACTIVATION_LINK_DAYS} jours",
        ),
        ("Lien de réinitialisation du mot de passe", f"{s.PORTAIL_RESET_LINK_MINUTES} minutes"),
        (
            "Cookie d’appareil connu (protection contre les essais de mots de passe)",
            f"{s.PORTAIL_DEVICE_COOKIE_DAYS} jours",
        ),
        (
            "Compte d’un élève ou d’un personnel qui a quitté l’établissement",
            f"{s.PORTAIL_LEAVER_GRACE_DAYS} jours après son départ, puis désactivé",
        ),
    ]


@require_safe
def personal_data(request):
    return render(
        request,
        "pages/donnees_personnelles.html",
        {"legal": _legal(), "retention": retention_periods()},
    )


@require_safe
def charter(request):
    return render(request, "activation/charter.html")


@require_safe
@cache_control(public=True, max_age=3600)
def brand_css(request):
    """The region's colours as CSS custom properties (a file: the CSP forbids inline styles)."""
    primary = settings.PORTAIL_COLOR_PRIMARY
    body = (
        ":root {\n"
        f"  --color-primary: {primary};\n"
        f"  --color-primary-hover: {brand.darken(primary)};\n"
        "}\n"
    )
    return HttpResponse(body, content_type="text/css; charset=utf-8")


@require_safe
@cache_control(public=True, max_age=3600)
def logo(request):
    path = getattr(settings, "PORTAIL_LOGO", "")
    if not path or not Path(path).is_file():
        raise Http404
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if path.lower().endswith(".svg"):
        content_type = "image/svg+xml"
    response = FileResponse(open(path, "rb"), content_type=content_type)  # noqa: SIM115
    # An SVG is a document: it must never run a script of its own.
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response["X-Content-Type-Options"] = "nosniff"
    return response
