from django.conf import settings
from django.utils.cache import add_never_cache_headers

from .addresses import client_address, school_network


class ClientIPMiddleware:
    """request.client_ip: the peer, or behind trusted proxies the rightmost untrusted hop of
    X-Forwarded-For (portail.security.addresses); request.school_network: its declared label."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        ip = request.META.get("REMOTE_ADDR")
        if settings.PORTAIL_BEHIND_PROXY:
            ip = client_address(
                ip,
                request.META.get("HTTP_X_FORWARDED_FOR", ""),
                settings.PORTAIL_TRUSTED_PROXIES,
            )
        request.client_ip = ip
        request.school_network = school_network(ip)
        return self.get_response(request)


class NoStoreMiddleware:
    """Every page that shows or takes account data must not stay in a shared PC's cache."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # portail_cacheable: public documents that set their own caching (the OIDC JWKS).
        if not request.path.startswith(settings.STATIC_URL) and not getattr(
            response, "portail_cacheable", False
        ):
            add_never_cache_headers(response)  # Cache-Control: no-store (Django 5.2)
        return response
