"""/ — the home page: who is logged in, and the tiles of their applications.

Here, with the applications, rather than in accounts: accounts stays below sso (ARCHITECTURE.md).
"""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .services import applications_for, tile_icon


def _tiles(user):
    """CAS and OpenID Connect applications, then SAML service providers (IdP-initiated SSO)."""
    from portail.federation.idp.services import available_providers  # federation sits above sso

    providers = available_providers(user)
    for provider in providers:
        provider.icon = tile_icon(provider.short_label)
    return applications_for(user) + providers


@login_required
def home(request):
    return render(
        request,
        "accounts/home.html",
        {
            "structures": request.user.structures.all(),
            "classes": request.user.classes.all(),
            "applications": _tiles(request.user),
        },
    )
