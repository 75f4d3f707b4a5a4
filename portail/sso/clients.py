"""Rules on OIDC clients that django-oauth-toolkit's model does not know: redirect URIs of native
apps (RFC 8252), checked both when an administrator registers them and at each authorization."""

import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings
from oauth2_provider.models import AbstractApplication

# RFC 8252 §7.1: a private-use scheme is a reverse domain name the app's publisher controls
# (com.example.app), so it has at least one dot; plain names ("myapp") collide between apps.
_PRIVATE_USE_SCHEME = re.compile(r"^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$")


def _is_loopback_literal(host: str | None) -> bool:
    # RFC 8252 §8.3: the loopback IP literal, not "localhost" (which DNS or a hosts file may move).
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_uri_problem(uri: str, client) -> str | None:
    """Why this redirect URI is not acceptable for this client (in French), or None."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    public = client is not None and client.client_type == AbstractApplication.CLIENT_PUBLIC
    if parts.fragment or "#" in uri:
        return f"« {uri} » : pas de fragment (#) dans une adresse de retour (RFC 6749 §3.1.2)."
    if scheme == "https":
        return None
    if scheme == "http":
        from .outbound import loopback_allowed

        # Development and tests (DEBUG, PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK): any client.
        if settings.DEBUG or (loopback_allowed() and _is_loopback_literal(parts.hostname)):
            return None
        # RFC 8252 §7.3: a native app listens on the loopback interface, any port.
        if public and _is_loopback_literal(parts.hostname):
            return None
        return (
            f"« {uri} » : http:// seulement vers 127.0.0.1 ou [::1] pour une application native "
            "(client public) ; sinon https://."
        )
    if scheme in settings.OAUTH2_PROVIDER[
        "ALLOWED_REDIRECT_URI_SCHEMES"
    ] and _PRIVATE_USE_SCHEME.match(scheme):
        if public:
            return None
        return f"« {uri} » : un schéma privé (RFC 8252 §7.1) est réservé aux clients publics."
    return (
        f"« {uri} » : schéma non autorisé. Un schéma privé d'application native doit être un nom "
        "de domaine inversé (fr.exemple.appli) déclaré dans PORTAIL_OIDC_NATIVE_SCHEMES."
    )
